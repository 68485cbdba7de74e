#include "server/service/client_message.h"

#include <algorithm>

#include "common/base/file_content.h"

namespace garden {
namespace {

// Characters that end a path in a message: whitespace, quotes and the
// punctuation messages put after a name.
bool EndsPath(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '"' || c == '\'' || c == ',' ||
         c == ';' || c == '(' || c == ')' || c == '[' || c == ']' || c == '`';
}

// A '/' at `i` starts an absolute path unless it follows a word, a path or
// a URL's scheme ("a/b", "https://", "1/2").
bool StartsPath(std::string_view s, size_t i) {
  if (s[i] != '/') return false;
  if (i == 0) return true;
  const char before = s[i - 1];
  return EndsPath(before) || before == '=';
}

}  // namespace

std::string ForClient(std::string_view full_message, const std::vector<std::string>& roots) {
  const std::string message = WithoutFileContent(full_message);
  std::vector<std::string> longest_first(roots);
  std::sort(longest_first.begin(), longest_first.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  std::string out;
  out.reserve(message.size());
  size_t i = 0;
  while (i < message.size()) {
    if (!StartsPath(message, i)) {
      out += message[i++];
      continue;
    }
    size_t end = i;
    while (end < message.size() && !EndsPath(message[end])) ++end;
    // A trailing ':' or '.' ends the sentence, not the path.
    while (end > i + 1 && (message[end - 1] == ':' || message[end - 1] == '.')) --end;
    const std::string_view path = std::string_view(message).substr(i, end - i);
    if (path.size() == 1) {  // a lone '/'
      out += message[i++];
      continue;
    }
    std::string shown = "<server path>";
    for (const std::string& root : longest_first) {
      if (root.empty() || !path.starts_with(root)) continue;
      if (path.size() == root.size()) {
        shown = "<root>";
        break;
      }
      if (path[root.size()] == '/' && path.size() > root.size() + 1) {
        shown = std::string(path.substr(root.size() + 1));
        break;
      }
    }
    out += shown;
    i = end;
  }
  return out;
}

}  // namespace garden

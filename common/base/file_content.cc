#include "common/base/file_content.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/base/absl_compat.h"
#include "common/base/utf8.h"

namespace garden {
namespace {

constexpr std::string_view kOpen = "\u27e6";
constexpr std::string_view kClose = "\u27e7";

}  // namespace

std::string ContentForMessage(std::string_view bytes) {
  const bool cut = bytes.size() > kMaxContentBytesInMessage;
  std::string escaped = EscapeForMessage(bytes.substr(0, kMaxContentBytesInMessage));
  // The marks inside an excerpt are escaped, so the first close ends it.
  escaped = absl::StrReplaceAll(escaped, {{ToAbsl(kOpen), "\\u27e6"},
                                          {ToAbsl(kClose), "\\u27e7"}});
  return absl::StrCat(ToAbsl(kOpen), escaped, cut ? "..." : "", ToAbsl(kClose));
}

std::string JsonErrorForMessage(std::string_view what) {
  // nlohmann writes "...; last read: '<token>'" and sometimes
  // "; expected <what>" after it; the token itself may hold quotes.
  constexpr std::string_view kLastRead = "last read: '";
  const size_t begin = what.find(kLastRead);
  if (begin == std::string_view::npos) return EscapeForMessage(what);
  const size_t token = begin + kLastRead.size();
  size_t end = what.rfind("'; expected ");
  if (end == std::string_view::npos || end < token) {
    end = !what.empty() && what.back() == '\'' && what.size() > token ? what.size() - 1
                                                                       : what.size();
  }
  return absl::StrCat(EscapeForMessage(what.substr(0, begin)), "last read: ",
                      ContentForMessage(what.substr(token, end - token)),
                      EscapeForMessage(what.substr(std::min(what.size(), end + 1))));
}

std::string WithoutFileContent(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  size_t i = 0;
  while (i < message.size()) {
    const size_t open = message.find(kOpen, i);
    if (open == std::string_view::npos) break;
    out.append(message.substr(i, open - i));
    out.append("<file content>");
    const size_t close = message.find(kClose, open + kOpen.size());
    i = close == std::string_view::npos ? message.size() : close + kClose.size();
  }
  if (i < message.size()) out.append(message.substr(i));
  return out;
}

}  // namespace garden

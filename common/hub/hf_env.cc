#include "common/hub/hf_env.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/base/files.h"
#include "common/base/status.h"

namespace garden {
namespace {

namespace fs = std::filesystem;

constexpr char kDefaultEndpoint[] = "https://huggingface.co";

bool Truthy(const std::string& value) {
  const std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(value));
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

// The token in a file: its first line, trimmed (huggingface_hub's rule).
absl::StatusOr<std::string> ReadToken(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return std::string(absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
}

}  // namespace

absl::StatusOr<HfSettings> ResolveHfSettings(
    const HfOverrides& flags,
    const std::function<std::optional<std::string>(const char*)>& getenv) {
  auto env = [&](const char* name) -> std::string {
    std::optional<std::string> v = getenv(name);
    return v ? *v : std::string();
  };
  HfSettings out;
  std::string home = env("HF_HOME");
  if (home.empty()) {
    const std::string user_home = env("HOME");
    home = (fs::path(user_home.empty() ? "/" : user_home) / ".cache" / "huggingface")
               .string();
  }
  out.endpoint = !flags.endpoint.empty()       ? flags.endpoint
                 : !env("HF_ENDPOINT").empty() ? env("HF_ENDPOINT")
                                               : kDefaultEndpoint;
  while (!out.endpoint.empty() && out.endpoint.back() == '/') out.endpoint.pop_back();
  out.cache_dir = !flags.cache_dir.empty()      ? flags.cache_dir
                  : !env("HF_HUB_CACHE").empty() ? env("HF_HUB_CACHE")
                                                 : (fs::path(home) / "hub").string();
  out.offline = flags.offline || Truthy(env("HF_HUB_OFFLINE"));
  if (!flags.token_file.empty()) {
    ASSIGN_OR_RETURN(out.token, ReadToken(flags.token_file));
    out.token_source = flags.token_file;
  } else if (!env("HF_TOKEN").empty()) {
    out.token = std::string(absl::StripAsciiWhitespace(env("HF_TOKEN")));
    out.token_source = "HF_TOKEN";
  } else {
    const std::string path = !env("HF_TOKEN_PATH").empty()
                                 ? env("HF_TOKEN_PATH")
                                 : (fs::path(home) / "token").string();
    if (absl::StatusOr<std::string> token = ReadToken(path); token.ok()) {
      out.token = *token;
      out.token_source = path;
    }
  }
  return out;
}

absl::StatusOr<HfSettings> ResolveHfSettings(const HfOverrides& flags) {
  return ResolveHfSettings(flags, [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
}

}  // namespace garden

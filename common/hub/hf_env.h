// Where the Hugging Face tools' settings come from, in their order of
// precedence, so that gardend finds the same endpoint, token and cache as
// huggingface_hub does:
//   endpoint  --hub-endpoint, else HF_ENDPOINT, else https://huggingface.co
//   token     --hf-token-file, else HF_TOKEN, else the file HF_TOKEN_PATH,
//             else $HF_HOME/token (HF_HOME defaults to ~/.cache/huggingface)
//   cache     --hub-cache, else HF_HUB_CACHE, else $HF_HOME/hub
//   offline   --offline, or HF_HUB_OFFLINE set to 1/true/yes/on
#ifndef GARDEN_COMMON_HUB_HF_ENV_H_
#define GARDEN_COMMON_HUB_HF_ENV_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace garden {

struct HfSettings {
  std::string endpoint;
  std::string token;  // empty: anonymous
  std::string token_source;  // for the log: "HF_TOKEN", a path; never the token
  std::string cache_dir;
  bool offline = false;
};

struct HfOverrides {  // gardend's flags; empty means not given
  std::string endpoint, token_file, cache_dir;
  bool offline = false;
};

// `getenv` is injectable for tests. A token file given by flag that cannot
// be read is NOT_FOUND / PERMISSION_DENIED; the default token files may be
// absent.
absl::StatusOr<HfSettings> ResolveHfSettings(
    const HfOverrides& flags,
    const std::function<std::optional<std::string>(const char*)>& getenv);
// With the process environment.
absl::StatusOr<HfSettings> ResolveHfSettings(const HfOverrides& flags);

}  // namespace garden

#endif  // GARDEN_COMMON_HUB_HF_ENV_H_

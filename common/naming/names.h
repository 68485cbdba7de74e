// How Garden names models and checkpoints, and which names it accepts.
//
// A model is (suite, size, variant): ("pythia", "70m", "deduped") is the
// Hugging Face repository EleutherAI/pythia-70m-deduped, stored on disk as a
// folder "pythia-70m-deduped" (plain layout) or
// "models--EleutherAI--pythia-70m-deduped" (hub cache).
#ifndef GARDEN_COMMON_NAMING_NAMES_H_
#define GARDEN_COMMON_NAMING_NAMES_H_

#include <compare>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace garden {

inline constexpr std::string_view kDefaultSuite = "pythia";
inline constexpr std::string_view kDefaultTensor = "embed_out.weight";
inline constexpr size_t kMaxNameLength = 256;

// INVALID_ARGUMENT unless `value` is 1..kMaxNameLength characters of
// [A-Za-z0-9._-] and not "." or "..": no '/', NUL or other byte that could
// reach a path. `field` names the request field in the message.
absl::Status ValidateName(std::string_view field, std::string_view value);

// Whether a tensor name is one of the buffers GPT-NeoX checkpoints written by
// torch.save carry beside the parameters (attention.bias, attention.masked_bias,
// rotary_emb.inv_freq): constants of the architecture that no training step
// changes, so "identical at every step" says nothing about them.
bool IsNonParameterBuffer(std::string_view tensor);

// Up to `k` names of `have` closest to `want` (names containing it first,
// then by edit distance), for "did you mean" messages. `anywhere`: by the
// edit distance to the closest part of each name, for a pattern matched
// anywhere in a name (garden layers --tensors).
std::vector<std::string> ClosestNames(std::string_view want,
                                      const std::vector<std::string>& have,
                                      size_t k = 3, bool anywhere = false);

// "standard" or "deduped" for the names users type: those two, and the
// paper's aliases "NDD" and "DD" (any case). INVALID_ARGUMENT otherwise.
absl::StatusOr<std::string> CanonicalVariant(std::string_view variant);

struct ModelKey {
  std::string suite;    // [a-z0-9]+ as found on disk
  std::string size;     // [a-z0-9.]+
  std::string variant;  // "standard" | "deduped"
  // Which training run, for suites trained more than once (PolyPythias:
  // EleutherAI/pythia-160m-seed3, -weight-seed2, -data-seed1): "" for the
  // main run, else "seedN", "weight-seedN" or "data-seedN".
  std::string run;

  // "pythia-70m-deduped", "pythia-70m", "pythia-160m-seed3".
  std::string Name() const;
  auto operator<=>(const ModelKey&) const = default;

  // Parses a folder or repository name "<suite>-<size>[-deduped][-<run>]".
  static std::optional<ModelKey> FromRepoName(std::string_view name);
};

// "" or a run name as above (N: 1 to 9 digits), lower-cased: "Seed3" is
// "seed3". INVALID_ARGUMENT otherwise, naming the accepted forms.
absl::StatusOr<std::string> CanonicalRun(std::string_view run);

// Validates and canonicalises a model address from a request: suite defaults
// to "pythia", the variant's aliases are resolved, every name validated.
absl::StatusOr<ModelKey> MakeModelKey(std::string_view suite,
                                      std::string_view size,
                                      std::string_view variant,
                                      std::string_view run = "");

}  // namespace garden

#endif  // GARDEN_COMMON_NAMING_NAMES_H_

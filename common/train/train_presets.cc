// garden-train's presets (common/train/train_run.h).
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/train/train_run.h"

namespace garden {
namespace {

// Calibrated on a 2-core x86 VM shared with other work (libtorch 1.13 CPU,
// OpenBLAS, --threads 2) so that the default suite, tiny and small in both
// variants, trains in well under five minutes there: measured about 30 s
// per tiny model and 55 s per small one (held-out loss about 4.9 and 4.75
// nats against 6.6 for the unigram baseline). micro trains in about a
// second after the tokenizer (about 2 s on the whole corpus).
const std::vector<TrainPreset>& Presets() {
  // Fields in TrainPreset's order.
  static const auto* presets = new std::vector<TrainPreset>{
      // name    hidden layers heads seq_len batch steps every  lr    vocab
      {"micro",  32,    2,     2,    32,     4,    32,   8,   3e-3, 512},
      {"tiny",   64,    2,     4,    64,     16,   600,  100, 3e-3, 4096},
      {"small",  128,   3,     4,    64,     16,   600,  100, 3e-3, 4096},
  };
  return *presets;
}

}  // namespace

absl::StatusOr<TrainPreset> FindTrainPreset(std::string_view name) {
  for (const TrainPreset& p : Presets()) {
    if (p.name == name) return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown preset \"", ToAbsl(name),
                   "\"; known: ", absl::StrJoin(TrainPresetNames(), ", ")));
}

std::vector<std::string> TrainPresetNames() {
  std::vector<std::string> names;
  for (const TrainPreset& p : Presets()) names.push_back(p.name);
  return names;
}

}  // namespace garden

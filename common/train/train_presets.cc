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
  static const auto* presets = new std::vector<TrainPreset>{
      {.name = "micro",
       .hidden_size = 32,
       .num_layers = 2,
       .num_heads = 2,
       .seq_len = 32,
       .batch_size = 4,
       .steps = 32,
       .checkpoint_every = 8,
       .learning_rate = 3e-3,
       .vocab_size = 512},
      {.name = "tiny",
       .hidden_size = 64,
       .num_layers = 2,
       .num_heads = 4,
       .seq_len = 64,
       .batch_size = 16,
       .steps = 600,
       .checkpoint_every = 100,
       .learning_rate = 3e-3,
       .vocab_size = 4096},
      {.name = "small",
       .hidden_size = 128,
       .num_layers = 3,
       .num_heads = 4,
       .seq_len = 64,
       .batch_size = 16,
       .steps = 600,
       .checkpoint_every = 100,
       .learning_rate = 3e-3,
       .vocab_size = 4096},
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

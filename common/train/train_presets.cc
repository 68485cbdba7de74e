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

// The default suite, tiny and small in both variants, is meant to show the
// paper's phenomena within five minutes of training on a 2-core x86 VM
// (libtorch 1.13 CPU, OpenBLAS, --threads 2); measured (the measurements in
// the tools' history, issue 13) against Pythia's recipe at Garden's scale
// (600 updates at 3e-3, weight decay 0.01, tokenizer on the fortunes alone):
//   - the tokenizer also learns from Debian's license texts
//     (/usr/share/common-licenses, in the essential base-files package), as
//     Pythia's learnt from the whole Pile: rows of tokens the model never or
//     rarely sees only ever get the softmax's push-down and drift away from
//     the bulk of embed_out together, a second and third mode;
//   - a peak learning rate of 1e-2 (tiny) and more updates move them far
//     enough, early enough, for `garden bifurcation` to find an onset;
//   - weight decay 0.9: over a run Pythia's 0.01 decays weights by
//     sum(lr) * wd ~ 0.7 of their log-size over 143k updates, ours by 0.01;
//     at 0.9 the drifted rows partly return once the push fades, so that the
//     MSD from initialisation peaks inside the run;
//   - documents joined into one line (join_lines), as the cloze examples
//     are, so that held-out perplexity and unmasking ask the model for what
//     it learnt rather than the fortunes' line breaks.
// micro trains in about a second after the tokenizer (tests).
const std::vector<TrainPreset>& Presets() {
  static const std::string kLicenses = "/usr/share/common-licenses";
  // Fields in TrainPreset's order.
  static const auto* presets = new std::vector<TrainPreset>{
      // name   hidden layers heads seq_len batch steps every lr     vocab
      //   weight_decay warmup final_lr tokenizer_corpus join_lines
      {"micro", 32, 2, 2, 32, 4, 32, 8, 3e-3, 512,
       0.01, 0.01, 0.1, "", false},
      {"tiny", 64, 2, 4, 64, 16, 1000, 100, 1e-2, 4096,
       0.9, 0.01, 0.1, kLicenses, true},
      {"small", 128, 3, 4, 64, 16, 800, 100, 6e-3, 4096,
       0.9, 0.01, 0.1, kLicenses, true},
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

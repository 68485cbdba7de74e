// garden-train's plan (common/train/train_run.h): everything one run computes
// before it touches the disk — checked options, the folder's paths, the
// settings and their fingerprint, then the tokenizer, the model's
// configuration and the token streams. Internal to garden_train.
#ifndef GARDEN_COMMON_TRAIN_TRAIN_PLAN_H_
#define GARDEN_COMMON_TRAIN_TRAIN_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model/gpt_neox.h"
#include "common/train/corpus.h"
#include "common/train/train_eval.h"
#include "common/train/train_run.h"
#include "common/train/trainer.h"
#include "nlohmann/json.hpp"

namespace garden::train_internal {

using Json = nlohmann::json;

inline constexpr int64_t kMaxPositions = 2048;  // Pythia's, for serving
inline constexpr int64_t kVocabMultiple = 128;
inline constexpr char kStateDir[] = ".garden-train";
// Pythia's special tokens, BpeTrainerOptions' default: <|endoftext|> is id 0,
// the separator between documents, <|padding|> id 1.
inline constexpr int32_t kEndOfText = 0;

// The model's files under TrainRunOptions::out_dir.
struct Paths {
  std::string out, model_dir, state_dir, state_file, lock, train_json,
      suite_file, lambada, trash;
};

struct Plan {
  // MakePlan.
  TrainPreset model;
  std::string size;
  std::string model_name;
  Paths paths;
  Corpus corpus;
  // TrainPreset::tokenizer_corpus's documents (none without it).
  std::vector<std::string> tokenizer_extra;
  std::vector<int64_t> schedule;
  Json settings;  // what makes the bytes
  std::string fingerprint;
  // CompletePlan.
  std::string tokenizer_json;
  int32_t tokenizer_vocab = 0;
  GptNeoxConfig config;
  std::string config_json;
  std::vector<int32_t> train_stream;
  HeldoutSet heldout;  // the samples scored at each checkpoint
  double unigram_loss = 0;
  Json suite_record;  // what every model of the suite shares
};

// Checks the options (INVALID_ARGUMENT naming the flag and its limit), reads
// the corpus (its errors prefixed "corpus: "; FAILED_PRECONDITION without
// training documents) and settles the paths, settings and fingerprint.
absl::StatusOr<Plan> MakePlan(const TrainRunOptions& o);

// The rest: trains the suite's tokenizer, then the model's config.json and
// the token streams. FAILED_PRECONDITION for a corpus shorter than one
// training sequence.
absl::Status CompletePlan(const TrainRunOptions& o, Plan& plan);

// The learning-rate schedule of `m`.
LrSchedule ScheduleOf(const TrainPreset& m);
// The optimizer's options for `m` (its weight decay; the rest Pythia's).
OptimizerOptions OptimizerOf(const TrainPreset& m);

}  // namespace garden::train_internal

#endif  // GARDEN_COMMON_TRAIN_TRAIN_PLAN_H_

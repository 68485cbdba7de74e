// Where a garden-train run starts (common/train/train_run.h): confirming a
// model already trained, refusing folders that hold other settings, and the
// resume state — the trainer's state with the settings' fingerprint and the
// checkpoint history in its metadata. Reads only. Internal to garden_train.
#ifndef GARDEN_COMMON_TRAIN_TRAIN_RESUME_H_
#define GARDEN_COMMON_TRAIN_TRAIN_RESUME_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/formats/safetensors.h"
#include "common/train/train_plan.h"
#include "common/train/train_run.h"
#include "common/train/trainer.h"

namespace garden::train_internal {

// The resume state's metadata keys besides GptNeoxTrainer::SaveState's.
inline constexpr char kFingerprintKey[] = "garden_train_fingerprint";
inline constexpr char kHistoryKey[] = "garden_train_history";

// One checkpoint's entry in train.json and in the state's history.
struct CheckpointRecord {
  int64_t step = 0;
  double train_loss = std::numeric_limits<double>::quiet_NaN();
  double heldout_loss = std::numeric_limits<double>::quiet_NaN();
  double learning_rate = 0;
  int64_t tokens_seen = 0;

  Json ToJson() const;
  // nullopt without an integer "step"; other keys missing or mistyped keep
  // their defaults.
  static std::optional<CheckpointRecord> FromJson(const Json& j);
};

// The records as a JSON array.
Json HistoryJson(const std::vector<CheckpointRecord>& history);

// Whether `plan`'s model was already trained to the end with the same
// settings (train.json complete, same fingerprint, every scheduled step
// folder and the resume state present): then nothing is recomputed, not
// even the tokenizer.
bool AlreadyTrained(const Plan& plan, const TrainRunOptions& o);

// A resume state found, whole and ours; empty `state` to start from step 0.
struct ResumePoint {
  std::unique_ptr<SafetensorsFile> state;
  std::vector<CheckpointRecord> history;
};

// Refuses folders holding other settings (FAILED_PRECONDITION, unless
// --overwrite) and corrupt resume states (DATA_LOSS); decides between a
// fresh start and a resume.
absl::StatusOr<ResumePoint> Inspect(const TrainRunOptions& o, const Plan& plan);

// Loads `state` into `trainer`; DATA_LOSS if it does not load or its step
// disagrees with `history` or the plan.
absl::Status Restore(const Plan& plan, const SafetensorsFile& state,
                     const std::vector<CheckpointRecord>& history,
                     GptNeoxTrainer& trainer);

}  // namespace garden::train_internal

#endif  // GARDEN_COMMON_TRAIN_TRAIN_RESUME_H_

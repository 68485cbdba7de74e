// garden-train's writes into its output folder (common/train/train_run.h):
// folders made, removed, published whole or moved aside; JSON files; the
// per-model lock; the leftovers of a killed run. Errors name the path.
// Internal to garden_train.
#ifndef GARDEN_COMMON_TRAIN_TRAIN_FOLDER_H_
#define GARDEN_COMMON_TRAIN_TRAIN_FOLDER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/train/train_plan.h"

namespace garden::train_internal {

// mkdir -p; UNAVAILABLE ("<dir>: cannot create: ...") on failure.
absl::Status MakeDirs(const std::string& dir);
// rm -rf; UNAVAILABLE ("<path>: cannot remove: ...") on failure.
absl::Status RemoveTree(const std::string& path);

// Puts the complete folder `staged` at `target` in one step: a rename, or,
// when `target` exists (a step rewritten after a resume), an atomic
// exchange, after which the old folder is deleted. Readers never see a
// partial folder.
absl::Status Publish(const std::string& staged, const std::string& target);

// Moves `path` (file or folder, if it exists) out of sight to `trash`, then
// deletes it.
absl::Status Discard(const std::string& path, const std::string& trash);

// A JSON object from `path`; DATA_LOSS ("<path>: not a JSON object") if the
// file holds anything else.
absl::StatusOr<Json> ReadJsonFile(const std::string& path);
// `j`, indented, written atomically.
absl::Status WriteJsonFile(const std::string& path, const Json& j);
// `v`, or null for NaN and infinities, which JSON lacks.
Json JsonNumber(double v);

// "steps: 600 here, 800 there; seed: ..." for the keys that differ.
std::string SettingsDiff(const Json& want, const Json& have);

// Held (flock) while a run trains a model: one process per model at a time.
class ModelLock {
 public:
  ModelLock() = default;
  ~ModelLock();
  ModelLock(const ModelLock&) = delete;
  ModelLock& operator=(const ModelLock&) = delete;

  // Creates and locks paths.lock; FAILED_PRECONDITION if another process
  // holds it.
  absl::Status Acquire(const Paths& paths, const std::string& model_name);

 private:
  int fd_ = -1;
};

// Removes what a killed run of this model left: staged step folders and
// WriteFileAtomic's temporary files ("<name>.tmp.XXXXXX"). The suite's
// shared files may be in the middle of a write by a run of another model,
// so only old temporaries of those go.
absl::Status RemoveLeftovers(const Paths& paths);

}  // namespace garden::train_internal

#endif  // GARDEN_COMMON_TRAIN_TRAIN_FOLDER_H_

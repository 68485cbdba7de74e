// The one place that knows where checkpoints live and how they are named.
//
// A store scans its roots for two layouts:
//   plain      ROOT/<suite>-<size>[-deduped]/step<N>/{config.json,
//                                                     model.safetensors}
//   hub cache  ROOT/models--<org>--<suite>-<size>[-deduped]/
//                  {refs/step<N>, snapshots/<commit>/...}
// A root may also be a model folder of the plain layout itself. Checkpoints
// hold model.safetensors, model.safetensors.index.json and shards,
// pytorch_model.bin, or pytorch_model.bin.index.json and shards (the torch.save
// files Pythia's step revisions hold); where a checkpoint has both formats,
// safetensors is read. A sharded checkpoint opens only the shard holding the
// tensor asked for.
// Hub repositories (Options::hub, --hub-repo) are models too, layout "hub":
// their steps are the repositories' step<N> branches and their files come
// through HubCheckpoints (the Hugging Face cache, range reads); a model found
// on disk is served from disk. Every local path is resolved and checked to lie
// inside its root before it is opened; names from requests are only ever compared with names found on
// disk, never joined into paths.
#ifndef GARDEN_SERVER_STORE_CHECKPOINT_STORE_H_
#define GARDEN_SERVER_STORE_CHECKPOINT_STORE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/formats/tensor_file.h"
#include "common/naming/names.h"
#include "server/store/hub_checkpoints.h"

namespace garden {

struct CheckpointLocation {
  ModelKey model;
  int64_t step = 0;
  std::string root;  // canonical root the checkpoint was found under
  std::string dir;   // folder holding the checkpoint's files ("hub:..." on the Hub)
  // On the Hub: the repository and the branch's commit; empty otherwise.
  std::string hub_repo = {}, hub_commit = {};
  bool on_hub() const { return !hub_repo.empty(); }
};

struct ModelListing {
  ModelKey key;
  std::vector<int64_t> steps;  // ascending
  std::string repo_id;         // "EleutherAI/pythia-70m-deduped" where known
  std::string layout;          // "plain", "hf-cache" or "hub"
};

// One model as one scan of the roots saw it. A request resolves its model
// once (CheckpointStore::FindModel) and locates every step it needs here:
// no further lookups, no rescans, one consistent set of steps.
struct ModelSnapshot {
  ModelListing listing;
  std::map<int64_t, CheckpointLocation> checkpoints;  // by step

  // NOT_FOUND naming the nearest present steps.
  absl::StatusOr<CheckpointLocation> Locate(int64_t step) const;
  // Locate for each of `steps`, stopping at the first missing one.
  absl::StatusOr<std::vector<CheckpointLocation>> LocateAll(
      const std::vector<int64_t>& steps) const;
};

// One tensor of a checkpoint, its file open.
struct TensorHandle {
  std::shared_ptr<const TensorFile> file;
  const TensorInfo* info = nullptr;  // owned by file
};

struct TensorListing {
  TensorInfo info;
  std::string file;  // base name of the file holding it
};

class CheckpointStore {
 public:
  // The weight files a checkpoint is read from.
  struct WeightLayout {
    std::string_view single;
    std::string_view index;  // empty: not sharded
  };
  struct Options {
    std::vector<std::string> roots;
    // A lookup that misses rescans the roots (new downloads appear without a
    // restart), at most this often.
    std::chrono::milliseconds rescan_interval{1000};
    // Hub repositories served beside the roots; may be null.
    std::shared_ptr<HubCheckpoints> hub = nullptr;
  };

  // INVALID_ARGUMENT if a root is not an existing folder.
  static absl::StatusOr<std::unique_ptr<CheckpointStore>> Open(Options options);

  // Rescans every root.
  void Refresh();

  std::vector<ModelListing> ListModels(std::string_view suite_filter) const;

  // The model as the catalog holds it now, rescanning first when it is
  // missing. NOT_FOUND naming the models that do exist nearby.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> FindModel(
      const ModelKey& key);

  // One step, for requests about one checkpoint: a step missing from the
  // catalog is looked for again after a rescan. NOT_FOUND naming the
  // nearest present steps.
  absl::StatusOr<CheckpointLocation> Locate(const ModelKey& key, int64_t step);

  // Model lookups (FindModel calls, Locate's included) since the store was
  // opened: tests check with it that a request resolves its model once.
  uint64_t model_lookups() const { return model_lookups_.load(); }

  // Opens the file holding `tensor` and only that one. NOT_FOUND with close
  // names when the checkpoint lacks it; DATA_LOSS naming the file when a
  // file is corrupt, or naming the tensor and the shard when the shard index
  // names a tensor its shard lacks; FAILED_PRECONDITION for content the
  // readers refuse; PERMISSION_DENIED for paths escaping the root.
  absl::StatusOr<TensorHandle> OpenTensor(const CheckpointLocation& where,
                                          std::string_view tensor) const;

  absl::StatusOr<std::vector<TensorListing>> ListTensors(
      const CheckpointLocation& where) const;

  // ListTensors' tensors (by name) ready to read: each weight file opened
  // once (OpenWeightFiles), rather than once per tensor as OpenTensor does.
  absl::StatusOr<std::vector<TensorHandle>> OpenAllTensors(
      const CheckpointLocation& where) const;

  // Every weight file of the checkpoint (the single file, or each shard the
  // index names), opened and validated. `whole`: a model load, for which a
  // Hub checkpoint's files are downloaded whole into the Hugging Face cache
  // rather than read by range.
  struct WeightFile {
    std::string name;  // as the checkpoint names it (hub blobs have others)
    std::shared_ptr<const TensorFile> file;
  };
  absl::StatusOr<std::vector<WeightFile>> OpenWeightFiles(
      const CheckpointLocation& where, bool whole = false) const;

  // The tokenizer.json beside the checkpoint's weights, or "" when it has
  // none.
  absl::StatusOr<std::string> TokenizerPath(
      const CheckpointLocation& where) const;

  // The checkpoint's config.json, or "" when it has none.
  absl::StatusOr<std::string> ReadConfig(const CheckpointLocation& where) const;

  const std::vector<std::string>& roots() const { return roots_; }

 private:
  using Catalog = std::map<ModelKey, ModelSnapshot>;

  explicit CheckpointStore(Options options, std::vector<std::string> roots);
  std::shared_ptr<const Catalog> Current() const;
  void MaybeRescan();
  absl::StatusOr<std::string> ResolveInside(const CheckpointLocation& where,
                                            std::string_view file) const;
  // Maps tensor names to shard files for a sharded checkpoint.
  absl::StatusOr<std::map<std::string, std::string>> ReadShardIndex(
      const CheckpointLocation& where, std::string_view index_name) const;
  // One weight file of the checkpoint, opened in the format its name says;
  // a shard the index names but the folder lacks is DATA_LOSS.
  absl::StatusOr<std::shared_ptr<const TensorFile>> OpenWeightFile(
      const CheckpointLocation& where, const std::string& file,
      bool from_index, bool whole) const;
  // Whether the checkpoint has a file of that name; for a Hub checkpoint,
  // the error of listing its files (offline: not recorded).
  absl::StatusOr<bool> HasFile(const CheckpointLocation& where,
                               std::string_view file) const;
  // A small file of the checkpoint (config, index), bounded in size.
  absl::StatusOr<std::string> ReadSmall(const CheckpointLocation& where,
                                        std::string_view file) const;
  absl::StatusOr<WeightLayout> Weights(const CheckpointLocation& where) const;
  void AddHubModels(std::map<ModelKey, ModelSnapshot>* catalog) const;

  Options options_;
  std::vector<std::string> roots_;  // canonical
  mutable std::mutex mu_;
  std::shared_ptr<const Catalog> catalog_;
  std::chrono::steady_clock::time_point last_scan_;
  std::atomic<uint64_t> model_lookups_{0};
};

}  // namespace garden

#endif  // GARDEN_SERVER_STORE_CHECKPOINT_STORE_H_

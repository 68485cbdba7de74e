// The checkpoints of the Hugging Face Hub repositories gardend serves
// (--hub-repo ORG/NAME): their steps are the repositories' step<N> branches,
// their small files (config.json, tokenizer.json, shard indexes) and whole
// weight files come through the Hugging Face cache (common/hub/hf_cache.h),
// and single tensors are read by range through the extract cache
// (common/hub/hub_file_source.h). Offline, everything comes from the caches:
// refs/ for the steps, and what Garden recorded of each commit's files.
// CheckpointStore asks this; nothing else does.
#ifndef GARDEN_SERVER_STORE_HUB_CHECKPOINTS_H_
#define GARDEN_SERVER_STORE_HUB_CHECKPOINTS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/formats/tensor_file.h"
#include "common/hub/extract_cache.h"
#include "common/hub/hf_cache.h"
#include "common/hub/hub_client.h"
#include "common/naming/names.h"

namespace garden {

class HubCheckpoints {
 public:
  struct Options {
    std::vector<std::string> repos;  // "EleutherAI/pythia-70m-deduped"
    HubOptions client;               // endpoint and token
    std::string cache_dir;           // the Hugging Face cache root
    uint64_t extract_bytes = 64ull << 30;
    bool offline = false;
  };
  // INVALID_ARGUMENT for a repository whose name is not a model name
  // (ModelKey::FromRepoName) or a bad endpoint.
  static absl::StatusOr<std::unique_ptr<HubCheckpoints>> Open(Options options);

  struct Step {
    int64_t step;
    std::string branch, commit;
  };
  struct Repo {
    std::string repo;
    ModelKey key;
    std::vector<Step> steps;  // ascending
  };
  // Every repository's step branches: from the Hub (then also written to the
  // cache's refs/), or offline from refs/. A repository that cannot be
  // listed is logged and keeps what the last scan found.
  std::vector<Repo> Scan();

  // The files of a commit.
  absl::StatusOr<std::vector<std::string>> Files(std::string_view repo,
                                                 std::string_view commit);
  // The file in the Hugging Face cache, downloaded whole if it is not there.
  absl::StatusOr<std::string> LocalFile(std::string_view repo,
                                        std::string_view commit,
                                        std::string_view file);
  // A weight file opened for range reads (or from the cache, when the whole
  // file is there).
  absl::StatusOr<std::shared_ptr<const TensorFile>> OpenRemote(
      std::string_view repo, std::string_view commit, std::string_view file);

  bool offline() const { return options_.offline; }
  const std::string& cache_dir() const { return options_.cache_dir; }
  // Body bytes received from the Hub (benchmarks and tests).
  uint64_t bytes_received() const;
  // The tensor extracts' cache, for metrics.
  ExtractCache::Stats extract_stats() const { return extracts_->stats(); }

 private:
  explicit HubCheckpoints(Options options) : options_(std::move(options)) {}
  // FileInfo of a commit's file, remembered (and recorded in the cache for
  // offline use).
  absl::StatusOr<HubFileInfo> Info(std::string_view repo,
                                   std::string_view commit,
                                   std::string_view file);
  std::string MetaPath(std::string_view repo, std::string_view commit) const;
  void SaveMeta(std::string_view repo, std::string_view commit);
  void LoadMeta(std::string_view repo, std::string_view commit);

  Options options_;
  std::shared_ptr<HubClient> client_;  // null offline
  std::unique_ptr<HfCache> hf_cache_;
  std::shared_ptr<ExtractCache> extracts_;
  std::mutex mu_;
  std::map<std::string, Repo> last_scan_;  // by repo
  struct Commit {
    bool loaded = false;
    std::vector<std::string> files;
    std::map<std::string, HubFileInfo> infos;
  };
  std::map<std::string, Commit> commits_;  // by "repo@commit"
};

}  // namespace garden

#endif  // GARDEN_SERVER_STORE_HUB_CHECKPOINTS_H_

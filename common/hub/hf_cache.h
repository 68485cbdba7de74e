// The Hugging Face cache layout, written as huggingface_hub writes it, so
// that Garden and the Hugging Face tools share one cache:
//   models--{org}--{name}/blobs/<etag>           the file (sha256 for LFS
//                                                files, git sha1 otherwise)
//   models--{org}--{name}/snapshots/<commit>/<path>  relative symlink to it
//   models--{org}--{name}/refs/<revision>        the commit, written atomically
//   models--{org}--{name}/.no_exist/<commit>/<path>  the Hub said: no such file
// Downloads go to blobs/<etag>.<random>.incomplete and are renamed once
// complete (and their sha256 checked, for LFS files). A file already there —
// downloaded by huggingface-cli, say — is never fetched again.
#ifndef GARDEN_COMMON_HUB_HF_CACHE_H_
#define GARDEN_COMMON_HUB_HF_CACHE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/hub/hub_client.h"

namespace garden {

class HfCache {
 public:
  explicit HfCache(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  // root/models--{org}--{name}
  std::string RepoDir(std::string_view repo) const;

  // snapshots/<commit>/<file> when the cache holds it.
  std::optional<std::string> Cached(std::string_view repo,
                                    std::string_view commit,
                                    std::string_view file) const;
  // Whether .no_exist records that the revision has no such file.
  bool KnownMissing(std::string_view repo, std::string_view commit,
                    std::string_view file) const;

  // The file's path in the cache, downloading it first when it is missing
  // (NOT_FOUND from the Hub is recorded in .no_exist).
  absl::StatusOr<std::string> Fetch(HubClient& client, std::string_view repo,
                                    std::string_view commit,
                                    std::string_view file);

  // refs/<revision> = commit (atomically).
  absl::Status WriteRef(std::string_view repo, std::string_view revision,
                        std::string_view commit);
  // Every refs/<name> with the commit it holds (offline listings).
  std::vector<HubBranch> Refs(std::string_view repo) const;

 private:
  std::string root_;
};

}  // namespace garden

#endif  // GARDEN_COMMON_HUB_HF_CACHE_H_

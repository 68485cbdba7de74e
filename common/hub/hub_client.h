// A client of the Hugging Face Hub's HTTP API, as Garden needs it: a
// repository's branches, the files of a revision, a file's metadata, ranges
// of a file, whole files. libcurl underneath; no redirect is followed blindly.
//
// How it talks to the Hub (what the real one does):
// - GET {endpoint}/api/models/{repo}/refs; GET .../revision/{rev} (siblings);
//   HEAD/GET {endpoint}/{repo}/resolve/{rev}/{file}, the revision URL-encoded
//   with no safe characters, the file name with '/' kept.
// - Small files answer 200 (X-Repo-Commit, ETag = git blob sha1); weight
//   files answer 302 to a signed CDN URL on another host (X-Repo-Commit,
//   X-Linked-Etag = sha256, X-Linked-Size). Relative redirects (renamed
//   repositories) are followed too.
// - The token (Authorization: Bearer) goes to the Hub's host only and is
//   dropped when a redirect leaves it: presigned CDN URLs refuse requests
//   that carry a second credential. It is never logged or put in a message.
// - Ranges: Range: bytes=a-b must answer 206 with Content-Range bytes a-b/N;
//   a 200 instead (some CDNs) is read only as far as needed and closed; a
//   mismatched Content-Range or a body shorter or longer than announced is
//   retried, then DATA_LOSS.
// - 429, 5xx and dropped connections are retried with exponential backoff,
//   honouring Retry-After (seconds), resuming a partial range where it
//   stopped; then UNAVAILABLE. An expired signed URL (403 from the CDN) is
//   resolved again once.
//
// Errors name the repository (and the URL without its query string, which
// holds the CDN signature): X-Error-Code RepoNotFound, RevisionNotFound,
// EntryNotFound -> NOT_FOUND; GatedRepo -> UNAUTHENTICATED without a token,
// PERMISSION_DENIED with one that is refused, both saying how to give one
// (HF_TOKEN, $HF_HOME/token, --hf-token-file); offline -> UNAVAILABLE.
#ifndef GARDEN_COMMON_HUB_HUB_CLIENT_H_
#define GARDEN_COMMON_HUB_HUB_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace garden {

struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // no trailing '/'
  std::string token;                                // empty: anonymous
  int max_attempts = 5;                             // per request
  std::chrono::milliseconds first_backoff{250};     // doubles per retry
  std::chrono::milliseconds max_backoff{30'000};    // Retry-After is capped too
  std::chrono::seconds connect_timeout{10};
  // A transfer slower than 1 KiB/s for this long is dropped and retried.
  std::chrono::seconds stall_timeout{60};
  // Transfers of file bytes (ranges, downloads) in flight at once; more wait.
  int max_connections = 8;
};

struct HubBranch {
  std::string name;    // "step1000", "main"
  std::string commit;  // 40 hex digits
};

struct HubFileInfo {
  std::string repo, revision, filename;
  std::string commit;  // X-Repo-Commit
  // sha256 (X-Linked-Etag) for LFS/Xet files, the git blob sha1 otherwise;
  // without quotes. Names the blob in the Hugging Face cache.
  std::string etag;
  uint64_t size = 0;
  bool lfs = false;
  // Where the bytes are read: the signed CDN URL an LFS file redirects to,
  // or the resolve URL.
  std::string download_url;
};

class HubClient {
 public:
  // INVALID_ARGUMENT for an endpoint that is not http(s)://host[:port].
  static absl::StatusOr<std::unique_ptr<HubClient>> Create(HubOptions options);
  ~HubClient();

  const HubOptions& options() const { return options_; }

  // The repository's branches (GET /api/models/{repo}/refs).
  absl::StatusOr<std::vector<HubBranch>> ListBranches(std::string_view repo);
  // The file names of a revision (GET /api/models/{repo}/revision/{rev}).
  absl::StatusOr<std::vector<std::string>> ListFiles(std::string_view repo,
                                                     std::string_view revision);
  // HEAD of the resolve URL: commit, etag, size and where to read it.
  absl::StatusOr<HubFileInfo> FileInfo(std::string_view repo,
                                       std::string_view revision,
                                       std::string_view filename);
  // Fills `out` with bytes [offset, offset + out.size()) of the file.
  // INVALID_ARGUMENT past info.size.
  absl::Status ReadRange(const HubFileInfo& info, uint64_t offset,
                         absl::Span<uint8_t> out);
  // The whole file into `path` (created or truncated); for LFS files its
  // sha256 is checked against info.etag (DATA_LOSS on a mismatch).
  absl::Status Download(const HubFileInfo& info, const std::string& path);

  // Body bytes received from the network since the client was created.
  uint64_t bytes_received() const { return bytes_received_.load(); }

 private:
  explicit HubClient(HubOptions options);
  struct Impl;
  HubOptions options_;
  std::unique_ptr<Impl> impl_;
  std::atomic<uint64_t> bytes_received_{0};
};

// "step%31000"-safe: every byte but [A-Za-z0-9_.~-] percent-encoded.
std::string UrlEncodeAll(std::string_view s);
// The URL without its query string (which may hold a signature), for
// messages and logs.
std::string UrlForMessage(std::string_view url);

}  // namespace garden

#endif  // GARDEN_COMMON_HUB_HUB_CLIENT_H_

#include "common/hub/hf_cache.h"

#include <unistd.h>

#include <filesystem>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/base/absl_compat.h"
#include "common/base/files.h"
#include "common/base/status.h"

namespace garden {
namespace {

namespace fs = std::filesystem;

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return absl::StrCat(rng() & 0xffffffffffffull);
}

// A git commit: 40 hex digits (sha1), or 64 (sha256 repositories).
bool IsCommit(std::string_view s) {
  if (s.size() != 40 && s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// A repository path that stays inside its snapshot: relative, no "." or ".."
// segment, no empty one, no NUL.
bool IsSafeFile(std::string_view file) {
  if (file.empty() || file.front() == '/' || file.find('\0') != file.npos) {
    return false;
  }
  for (absl::string_view part : absl::StrSplit(ToAbsl(file), '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

bool SafeNames(std::string_view commit, std::string_view file) {
  return IsCommit(commit) && IsSafeFile(file);
}

}  // namespace

std::string HfCache::RepoDir(std::string_view repo) const {
  return (fs::path(root_) /
          absl::StrCat("models--", absl::StrReplaceAll(ToAbsl(repo), {{"/", "--"}})))
      .string();
}

std::optional<std::string> HfCache::Cached(std::string_view repo,
                                           std::string_view commit,
                                           std::string_view file) const {
  if (!SafeNames(commit, file)) return std::nullopt;
  const fs::path path =
      fs::path(RepoDir(repo)) / "snapshots" / std::string(commit) / std::string(file);
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path.string();  // follows the link
  return std::nullopt;
}

bool HfCache::KnownMissing(std::string_view repo, std::string_view commit,
                           std::string_view file) const {
  if (!SafeNames(commit, file)) return false;
  std::error_code ec;
  return fs::exists(fs::path(RepoDir(repo)) / ".no_exist" / std::string(commit) /
                        std::string(file),
                    ec);
}

absl::StatusOr<std::string> HfCache::Fetch(HubClient& client,
                                           std::string_view repo,
                                           std::string_view commit,
                                           std::string_view file) {
  if (!SafeNames(commit, file)) {
    return absl::InvalidArgumentError(absl::StrCat(
        ToAbsl(repo), ": \"", ToAbsl(file), "\" at \"", ToAbsl(commit),
        "\" is not a commit and a relative path inside it"));
  }
  if (auto cached = Cached(repo, commit, file)) return *cached;
  const fs::path dir(RepoDir(repo));
  absl::StatusOr<HubFileInfo> info = client.FileInfo(repo, commit, file);
  if (absl::IsNotFound(info.status())) {
    const fs::path marker = dir / ".no_exist" / std::string(commit) / std::string(file);
    std::error_code ec;
    fs::create_directories(marker.parent_path(), ec);
    if (!ec) (void)WriteFileAtomic(marker.string(), "");
  }
  if (!info.ok()) return info.status();
  std::error_code ec;
  fs::create_directories(dir / "blobs", ec);
  const fs::path blob = dir / "blobs" / info->etag;
  if (!fs::is_regular_file(blob, ec)) {
    const std::string incomplete =
        absl::StrCat(blob.string(), ".", RandomSuffix(), ".incomplete");
    absl::Status got = client.Download(*info, incomplete);
    if (got.ok() && ::rename(incomplete.c_str(), blob.c_str()) != 0) {
      got = ErrnoStatus(blob.string(), errno, "cannot rename the download");
    }
    if (!got.ok()) {
      fs::remove(incomplete, ec);
      return got;
    }
  }
  const fs::path link = dir / "snapshots" / std::string(commit) / std::string(file);
  fs::create_directories(link.parent_path(), ec);
  const fs::path target = fs::relative(blob, link.parent_path(), ec);
  const std::string temp = absl::StrCat(link.string(), ".", RandomSuffix(), ".tmp");
  fs::create_symlink(target, temp, ec);
  if (!ec) fs::rename(temp, link, ec);  // atomic: no half-made link
  if (ec) {
    return absl::InternalError(absl::StrCat(link.string(), ": ", ec.message()));
  }
  return link.string();
}

absl::Status HfCache::WriteRef(std::string_view repo, std::string_view revision,
                               std::string_view commit) {
  const fs::path path = fs::path(RepoDir(repo)) / "refs" / std::string(revision);
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  return WriteFileAtomic(path.string(), commit);
}

std::vector<HubBranch> HfCache::Refs(std::string_view repo) const {
  std::vector<HubBranch> out;
  std::error_code ec;
  for (fs::directory_iterator it(fs::path(RepoDir(repo)) / "refs", ec), end;
       !ec && it != end; it.increment(ec)) {
    // A temporary file of a WriteRef that was killed is not a ref.
    if (!it->is_regular_file() ||
        it->path().filename().string().find(".tmp.") != std::string::npos) {
      continue;
    }
    absl::StatusOr<std::string> text = ReadFileToString(it->path().string());
    if (!text.ok()) continue;
    const std::string commit(absl::StripAsciiWhitespace(*text));
    if (IsCommit(commit)) out.push_back({it->path().filename().string(), commit});
  }
  return out;
}

}  // namespace garden

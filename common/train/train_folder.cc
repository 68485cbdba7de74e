#include "common/train/train_folder.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/files.h"
#include "common/base/status.h"

namespace garden::train_internal {

namespace fs = std::filesystem;

namespace {

// UNAVAILABLE "<path>: <what>: <reason>" when `ec` holds an error.
absl::Status FileSystemStatus(const std::error_code& ec, const std::string& path,
                              std::string_view what) {
  if (!ec) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat(path, ": ", ToAbsl(what), ": ", ec.message()));
}

}  // namespace

absl::Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  return FileSystemStatus(ec, dir, "cannot create");
}

absl::Status RemoveTree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  return FileSystemStatus(ec, path, "cannot remove");
}

absl::Status Publish(const std::string& staged, const std::string& target) {
  if (renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(),
                RENAME_NOREPLACE) != 0) {
    if (errno != EEXIST) return ErrnoStatus(target, errno, "rename");
    if (renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(),
                  RENAME_EXCHANGE) != 0) {
      return ErrnoStatus(target, errno, "rename (exchange)");
    }
    RETURN_IF_ERROR(RemoveTree(staged));
  }
  return FsyncDirectory(fs::path(target).parent_path().string());
}

absl::Status Discard(const std::string& path, const std::string& trash) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return absl::OkStatus();
  RETURN_IF_ERROR(MakeDirs(fs::path(trash).parent_path().string()));
  RETURN_IF_ERROR(RemoveTree(trash));
  fs::rename(path, trash, ec);
  RETURN_IF_ERROR(FileSystemStatus(ec, path, "cannot move aside"));
  return RemoveTree(trash);
}

absl::StatusOr<Json> ReadJsonFile(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": not a JSON object"));
  }
  return j;
}

absl::Status WriteJsonFile(const std::string& path, const Json& j) {
  return WriteFileAtomic(path, j.dump(2) + "\n");
}

Json JsonNumber(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

std::string SettingsDiff(const Json& want, const Json& have) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : want.items()) {
    auto it = have.find(key);
    if (it == have.end()) {
      parts.push_back(
          absl::StrCat(key, ": ", value.dump(), " here, absent there"));
    } else if (*it != value) {
      parts.push_back(absl::StrCat(key, ": ", value.dump(), " here, ",
                                   it->dump(), " there"));
    }
  }
  for (const auto& [key, value] : have.items()) {
    if (!want.contains(key)) {
      parts.push_back(
          absl::StrCat(key, ": absent here, ", value.dump(), " there"));
    }
  }
  return parts.empty() ? std::string("(identical settings, other fingerprint)")
                       : absl::StrJoin(parts, "; ");
}

ModelLock::~ModelLock() {
  if (fd_ >= 0) close(fd_);  // releases the lock
}

absl::Status ModelLock::Acquire(const Paths& p, const std::string& model_name) {
  // The lock lives beside the state folder, which --overwrite deletes.
  RETURN_IF_ERROR(MakeDirs(fs::path(p.lock).parent_path().string()));
  fd_ = open(p.lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return ErrnoStatus(p.lock, errno, "open");
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("another garden-train is training ", model_name,
                       " into ", p.out, " (", p.lock, " is locked)"));
    }
    return ErrnoStatus(p.lock, errno, "flock");
  }
  return absl::OkStatus();
}

absl::Status RemoveLeftovers(const Paths& p) {
  const auto stale = std::chrono::file_clock::now() - std::chrono::minutes(10);
  const std::vector<std::pair<std::string, std::string>> leftovers = {
      {p.state_dir, "tmp."},
      {p.state_dir, "state.safetensors.tmp."},
      {p.model_dir, "train.json.tmp."},
      {p.out, fs::path(p.lambada).filename().string() + ".tmp."},
      {fs::path(p.suite_file).parent_path().string(),
       fs::path(p.suite_file).filename().string() + ".tmp."},
  };
  for (const auto& [dir, prefix] : leftovers) {
    const bool shared = dir != p.state_dir && dir != p.model_dir;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().filename().string().rfind(prefix, 0) != 0) continue;
      if (shared && fs::last_write_time(entry.path(), ec) > stale) continue;
      RETURN_IF_ERROR(RemoveTree(entry.path().string()));
    }
  }
  return absl::OkStatus();
}

}  // namespace garden::train_internal

// Whole-file reads and crash-safe writes, with errors that name the path.
#ifndef GARDEN_COMMON_BASE_FILES_H_
#define GARDEN_COMMON_BASE_FILES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace garden {

// Writes `bytes` to `path` atomically: readers see the old file or the new
// one, never a part. The bytes go to a temporary file beside `path` (same
// directory, so the rename cannot cross file systems), which is fsynced and
// renamed over `path`; the directory is fsynced too, so the new name survives
// a crash. The file gets mode 0644. On failure `path` is untouched and the
// temporary file removed. Errors start with "<path>: " and map errno as
// ErrnoStatus (common/base/status.h) does: a missing directory is NOT_FOUND.
absl::Status WriteFileAtomic(const std::string& path, std::string_view bytes);

struct AtomicWriteOptions {
  // false: no fsync of the file or the directory. The rename is still
  // atomic for every other process (a kill -9 leaves the old file or the new
  // one), but a power loss may leave a torn file: for caches whose entries
  // carry their own checksum.
  bool durable = true;
};
absl::Status WriteFileAtomic(const std::string& path, std::string_view bytes,
                             const AtomicWriteOptions& options);

// fsync of the directory `dir`, which makes the renames done in it durable.
// Errors start with "<dir>: ", mapped as WriteFileAtomic's.
absl::Status FsyncDirectory(const std::string& dir);

// The whole file. NOT_FOUND or PERMISSION_DENIED (or UNKNOWN, for a
// directory, say) with a message starting with "<path>: ".
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// ReadFileToString of a file that may hold at most `max_bytes`, checked
// before reading (a wrong or hostile file is not read whole): a larger one is
// `too_big` "<path>: N bytes, more than the M such a file may have".
absl::StatusOr<std::string> ReadFileAtMost(
    const std::string& path, uint64_t max_bytes,
    absl::StatusCode too_big = absl::StatusCode::kFailedPrecondition);

// ReadFileToString of a file a command-line flag names (a certificate, a
// token): messages start with "<flag> <path>: ". INVALID_ARGUMENT for a file
// over `max_bytes`, checked before reading (a wrong path to a checkpoint is
// not read whole).
absl::StatusOr<std::string> ReadFlagFile(std::string_view flag,
                                         const std::string& path,
                                         uint64_t max_bytes);

}  // namespace garden

#endif  // GARDEN_COMMON_BASE_FILES_H_

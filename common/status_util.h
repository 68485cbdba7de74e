// Turning OS errors into statuses the same way everywhere.
#ifndef GARDEN_COMMON_STATUS_UTIL_H_
#define GARDEN_COMMON_STATUS_UTIL_H_

#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"

namespace garden {

// "<path>: <what>: <strerror>" as NOT_FOUND (ENOENT, ENOTDIR),
// PERMISSION_DENIED (EACCES, EPERM) or UNKNOWN.
inline absl::Status ErrnoStatus(const std::string& path, int err,
                                std::string_view what) {
  std::string message =
      absl::StrCat(path, ": ", ToAbsl(what), ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::UnknownError(message);
  }
}

}  // namespace garden

#endif  // GARDEN_COMMON_STATUS_UTIL_H_

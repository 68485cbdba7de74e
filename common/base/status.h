// Status plumbing shared by every library: OS errors as statuses, context
// added to a status without changing its code, and the early-return macros.
//
//   RETURN_IF_ERROR(WriteFileAtomic(path, bytes));
//   ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
//   return Annotate(status, "pythia-70m step 1000");   // "pythia-70m step 1000: ..."
#ifndef GARDEN_COMMON_BASE_STATUS_H_
#define GARDEN_COMMON_BASE_STATUS_H_

#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"

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

// `status` with "<context>: " before its message; the code is kept. OK stays OK.
inline absl::Status Annotate(const absl::Status& status,
                             std::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(ToAbsl(context), ": ", status.message()));
}

namespace status_internal {
inline absl::Status AsStatus(absl::Status status) { return status; }
template <typename T>
absl::Status AsStatus(const T& status_or) {
  return status_or.status();
}
}  // namespace status_internal

}  // namespace garden

#define GARDEN_STATUS_CONCAT_INNER_(a, b) a##b
#define GARDEN_STATUS_CONCAT_(a, b) GARDEN_STATUS_CONCAT_INNER_(a, b)

// Returns the status of `expr` (an absl::Status) from the enclosing function
// unless it is OK.
#define RETURN_IF_ERROR(expr)                                            \
  do {                                                                   \
    if (absl::Status garden_status_ = (expr); !garden_status_.ok()) {    \
      return garden_status_;                                             \
    }                                                                    \
  } while (false)

// Evaluates `expr` (an absl::StatusOr<T>); returns its status unless OK, else
// moves its value into `lhs`, which may declare a variable ("auto x",
// "const auto& x") or name an existing one.
#define ASSIGN_OR_RETURN(lhs, expr) \
  GARDEN_ASSIGN_OR_RETURN_IMPL_(    \
      GARDEN_STATUS_CONCAT_(garden_status_or_, __LINE__), lhs, expr)
#define GARDEN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = *std::move(tmp)

#endif  // GARDEN_COMMON_BASE_STATUS_H_

// Debian 12's Abseil keeps its own absl::string_view (not std::string_view);
// this bridges std::string_view into absl::StrCat, StrSplit and friends.
#ifndef GARDEN_COMMON_BASE_ABSL_COMPAT_H_
#define GARDEN_COMMON_BASE_ABSL_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace garden {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace garden

#endif  // GARDEN_COMMON_BASE_ABSL_COMPAT_H_

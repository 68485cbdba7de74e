// Singular values of a weight matrix, in float64 through libtorch's LAPACK,
// for `garden layers`. Exact SVD costs O(M N^2) and a copy of the matrix per
// factor; past `max_svd_values` entries the values come from the
// eigenvalues of the smaller Gram matrix (W^T W or W W^T, formed by one
// BLAS-3 product in float64), which carries the same spectrum with an
// absolute error of about eps * sigma_max^2 in each sigma^2: singular
// values below ~1e-8 sigma_max are then noise. Each result says which.
#ifndef GARDEN_COMMON_SPECTRAL_SINGULAR_VALUES_H_
#define GARDEN_COMMON_SPECTRAL_SINGULAR_VALUES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace garden {

struct SingularValuesOptions {
  uint64_t max_svd_values = uint64_t{1} << 22;  // 4 Mi entries: 2048 x 2048
};

struct SingularValues {
  std::vector<double> values;  // descending, min(rows, cols) of them
  std::string method;          // "svd" or "gram"
};

// `w` row-major, rows x cols. INVALID_ARGUMENT when the sizes disagree;
// INTERNAL for a LAPACK failure (libtorch's exception, as text).
absl::StatusOr<SingularValues> ComputeSingularValues(absl::Span<const double> w, int64_t rows,
                                                     int64_t cols,
                                                     const SingularValuesOptions& options = {});

}  // namespace garden

#endif  // GARDEN_COMMON_SPECTRAL_SINGULAR_VALUES_H_

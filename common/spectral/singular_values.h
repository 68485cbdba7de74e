// Singular values of a weight matrix, in float64 through libtorch's LAPACK,
// for `garden layers`, by one of two methods; each result says which:
//   "svd":  LAPACK's SVD (values only), exact to rounding; O(M N^2) and a
//           copy of the matrix per factor, measured 3-6x slower than the
//           Gram path on Pythia's block matrices.
//   "gram": the eigenvalues of the smaller Gram matrix (W^T W or W W^T, one
//           float64 BLAS-3 product), the same spectrum with an absolute
//           error of about eps * sigma_max^2 in each sigma^2: singular
//           values below ~1e-8 sigma_max are then noise.
// kAuto takes the SVD up to `svd_below` entries and the Gram path above;
// kExact the SVD up to `max_svd_values` entries and RESOURCE_EXHAUSTED
// past them.
#ifndef GARDEN_COMMON_SPECTRAL_SINGULAR_VALUES_H_
#define GARDEN_COMMON_SPECTRAL_SINGULAR_VALUES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace garden {

enum class SpectrumMethod { kAuto, kExact };

struct SingularValuesOptions {
  SpectrumMethod method = SpectrumMethod::kAuto;
  uint64_t svd_below = uint64_t{1} << 16;       // kAuto: 64 Ki entries, 256 x 256
  uint64_t max_svd_values = uint64_t{1} << 22;  // kExact: 4 Mi entries, 2048 x 2048
};

struct SingularValues {
  std::vector<double> values;  // descending, min(rows, cols) of them
  std::string method;          // "svd" or "gram"
};

// `w` row-major, rows x cols. INVALID_ARGUMENT when the sizes disagree;
// RESOURCE_EXHAUSTED for kExact past max_svd_values, naming the size and the
// limit; INTERNAL for a LAPACK failure (libtorch's exception, as text).
absl::StatusOr<SingularValues> ComputeSingularValues(absl::Span<const double> w, int64_t rows,
                                                     int64_t cols,
                                                     const SingularValuesOptions& options = {});

}  // namespace garden

#endif  // GARDEN_COMMON_SPECTRAL_SINGULAR_VALUES_H_

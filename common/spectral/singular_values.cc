#include "common/spectral/singular_values.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace garden {

absl::StatusOr<SingularValues> ComputeSingularValues(absl::Span<const double> w, int64_t rows,
                                                     int64_t cols,
                                                     const SingularValuesOptions& options) {
  if (rows <= 0 || cols <= 0 || w.size() != static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols)) {
    return absl::InvalidArgumentError(absl::StrCat("a ", rows, " x ", cols, " matrix needs ",
                                                   rows * cols, " values, got ", w.size()));
  }
  try {
    c10::InferenceMode guard;
    // from_blob does not copy; the tensor only reads `w`.
    const at::Tensor m = at::from_blob(const_cast<double*>(w.data()), {rows, cols},
                                       at::TensorOptions().dtype(at::kDouble));
    SingularValues out;
    at::Tensor sigma;
    const bool exact = options.method == SpectrumMethod::kExact;
    if (exact && w.size() > options.max_svd_values) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "a ", rows, " x ", cols, " matrix has ", w.size(),
          " entries, over the exact SVD's limit of ", options.max_svd_values,
          " (spectrum \"exact\"); \"auto\" takes its spectrum from the Gram matrix"));
    }
    if (exact || w.size() <= options.svd_below) {
      out.method = "svd";
      // LAPACK is faster on the tall orientation; the values are the same.
      sigma = at::linalg_svdvals(rows >= cols ? m : m.t());
    } else {
      out.method = "gram";
      const at::Tensor gram = rows >= cols ? at::matmul(m.t(), m) : at::matmul(m, m.t());
      sigma = at::linalg_eigvalsh(gram).clamp_min(0).sqrt();
    }
    sigma = sigma.contiguous();
    const double* p = sigma.data_ptr<double>();
    out.values.assign(p, p + sigma.numel());
    std::sort(out.values.begin(), out.values.end(), std::greater<double>());
    return out;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("singular values: ", e.what_without_backtrace()));
  }
}

}  // namespace garden

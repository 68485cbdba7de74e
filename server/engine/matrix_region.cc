#include "server/engine/matrix_region.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "common/formats/dtype.h"
#include "common/stats/histogram.h"

namespace garden {
namespace {

// One range against a dimension of `size`: an end of 0 is the size.
absl::Status ResolveRange(const char* what, int64_t size, int64_t& begin, int64_t& end) {
  if (end == 0) end = size;
  if (begin < 0 || end > size || begin >= end) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " [", begin, ", ", end, ") is not a non-empty range within [0, ", size, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MatrixRegion> ResolveMatrixRegion(absl::Span<const int64_t> shape,
                                                 MatrixRegion r,
                                                 const MatrixRegionOptions& options) {
  if (shape.empty() || shape.size() > 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a matrix needs a tensor of 1 or 2 dimensions, not shape [",
        absl::StrJoin(shape, ", "), "]"));
  }
  const int64_t rows = shape.size() == 2 ? shape[0] : 1;
  const int64_t cols = shape.back();
  RETURN_IF_ERROR(ResolveRange("rows", rows, r.row_begin, r.row_end));
  RETURN_IF_ERROR(ResolveRange("columns", cols, r.col_begin, r.col_end));
  const uint64_t values = static_cast<uint64_t>(r.row_end - r.row_begin) *
                          static_cast<uint64_t>(r.col_end - r.col_begin);
  if (values > options.max_values) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rows [", r.row_begin, ", ", r.row_end, ") x columns [", r.col_begin, ", ",
        r.col_end, ") is ", values, " values; at most ", options.max_values,
        " per request: ask for fewer rows or columns"));
  }
  return r;
}

absl::Status ReadMatrixRegion(
    const TensorHandle& tensor, const MatrixRegion& r, const MatrixRegionOptions& options,
    const std::function<bool()>& cancelled,
    const std::function<absl::Status(int64_t first_row, absl::Span<const double>)>& block) {
  const TensorInfo& info = *tensor.info;
  if (!IsAnalysableFloat(info.dtype)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor \"", info.name, "\" has dtype ", ToAbsl(DTypeName(info.dtype)),
        "; a matrix needs F64, F32, F16 or BF16"));
  }
  const int64_t cols = info.shape.back();
  const auto width = static_cast<size_t>(r.col_end - r.col_begin);
  const size_t item = DTypeSize(info.dtype);
  const size_t rows_per_block =
      std::max<size_t>(1, static_cast<size_t>(options.block_values / width));
  std::vector<uint8_t> bytes(width * item);
  std::vector<double> values;
  values.reserve(std::min<size_t>(rows_per_block, static_cast<size_t>(r.row_end - r.row_begin)) *
                 width);
  int64_t first = r.row_begin;
  for (int64_t row = r.row_begin; row < r.row_end; ++row) {
    if (cancelled && cancelled()) return absl::CancelledError("matrix read cancelled");
    // One read per row: the rectangle's columns of a row are contiguous.
    RETURN_IF_ERROR(tensor.file->ReadElements(
        info, static_cast<uint64_t>(row) * static_cast<uint64_t>(cols) +
                  static_cast<uint64_t>(r.col_begin),
        absl::MakeSpan(bytes)));
    const size_t at = values.size();
    values.resize(at + width);
    DecodeInto(bytes.data(), width, info.dtype, values.data() + at);
    if (values.size() >= rows_per_block * width || row + 1 == r.row_end) {
      RETURN_IF_ERROR(block(first, values));
      values.clear();
      first = row + 1;
    }
  }
  return absl::OkStatus();
}

}  // namespace garden

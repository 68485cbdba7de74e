// A rectangle of one tensor's values (Figure 1 B: the first rows of
// embed_out.weight at two steps), read row by row through the tensor file:
// only the rectangle's bytes are read, and handed on a block of rows at a
// time so that a large rectangle never sits whole in memory.
#ifndef GARDEN_SERVER_ENGINE_MATRIX_REGION_H_
#define GARDEN_SERVER_ENGINE_MATRIX_REGION_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "server/store/checkpoint_store.h"

namespace garden {

// Half-open row and column ranges; an end of 0 means the tensor's last.
struct MatrixRegion {
  int64_t row_begin = 0, row_end = 0;
  int64_t col_begin = 0, col_end = 0;
};

struct MatrixRegionOptions {
  // Values one request may ask for (4 Mi: 32 MiB of doubles).
  uint64_t max_values = uint64_t{1} << 22;
  // Values a block holds at most (whole rows; at least one row).
  uint64_t block_values = uint64_t{1} << 16;
};

// `region` resolved against a `shape` (1-D: one row; 2-D): ends of 0 filled
// in. INVALID_ARGUMENT for a tensor of other rank, a range outside the
// shape or empty, or a rectangle of more than options.max_values values,
// each naming the values and the limit.
absl::StatusOr<MatrixRegion> ResolveMatrixRegion(absl::Span<const int64_t> shape,
                                                 MatrixRegion region,
                                                 const MatrixRegionOptions& options);

// Reads the resolved `region` of `tensor` and calls `block(first_row,
// values)` for consecutive blocks of whole rows, row-major, values decoded
// exactly to double. FAILED_PRECONDITION for a dtype that is not an
// analysable float (or a non-contiguous tensor); the file's errors
// (DATA_LOSS) as they come; CANCELLED once `cancelled` says so; a block's
// error stops the read and is returned.
absl::Status ReadMatrixRegion(
    const TensorHandle& tensor, const MatrixRegion& region,
    const MatrixRegionOptions& options, const std::function<bool()>& cancelled,
    const std::function<absl::Status(int64_t first_row, absl::Span<const double>)>& block);

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_MATRIX_REGION_H_

// Squared distances between two runs of stored tensor elements: the kernel
// of the mean square displacement (MSD) of a tensor between training steps.
//
// Elements are decoded exactly to double and their differences squared and
// summed in double: a difference of two halves can need more bits than a
// float has. F16 against F16 runs 8 elements per instruction with the F16C
// conversion where the CPU has it (AVX2, F16C, FMA); every other pair of
// dtypes, and the tail, runs the portable loop.
#ifndef GARDEN_COMMON_STATS_DISPLACEMENT_H_
#define GARDEN_COMMON_STATS_DISPLACEMENT_H_

#include <cstddef>
#include <cstdint>

#include "common/formats/dtype.h"

namespace garden {

// Sum over i < n of (x_i - r_i)^2, where x holds n little-endian elements of
// dtype dx and r n elements of dtype dr (each an analysable float: F64, F32,
// F16 or BF16). NaN when any difference is NaN, +inf when one is infinite.
// Summed with four partial sums, so the result is reproducible but not
// bit-identical to a left-to-right sum.
double SquaredDistance(const uint8_t* x, DType dx, const uint8_t* r, DType dr,
                       size_t n);

namespace displacement_internal {
// The portable loop SquaredDistance falls back to, exposed so that tests can
// compare it with the vectorised path on the same data.
double SquaredDistancePortable(const uint8_t* x, DType dx, const uint8_t* r,
                               DType dr, size_t n);
}  // namespace displacement_internal

}  // namespace garden

#endif  // GARDEN_COMMON_STATS_DISPLACEMENT_H_

#include "common/stats/displacement.h"

#include <algorithm>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common/stats/histogram.h"

namespace garden {
namespace displacement_internal {
namespace {

// Elements decoded at a time: small enough to stay in the L1 cache.
constexpr size_t kBlock = 2048;

}  // namespace

// Decoded block by block, with four partial sums.
double SquaredDistancePortable(const uint8_t* x, DType dx, const uint8_t* r,
                               DType dr, size_t n) {
  thread_local std::vector<double> a(kBlock), b(kBlock);
  double sum[4] = {0, 0, 0, 0};
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t m = std::min(kBlock, n - start);
    DecodeInto(x + start * DTypeSize(dx), m, dx, a.data());
    DecodeInto(r + start * DTypeSize(dr), m, dr, b.data());
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
      for (size_t l = 0; l < 4; ++l) {
        const double d = a[i + l] - b[i + l];
        sum[l] += d * d;
      }
    }
    for (; i < m; ++i) {
      const double d = a[i] - b[i];
      sum[0] += d * d;
    }
  }
  return (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

}  // namespace displacement_internal

namespace {

#if defined(__x86_64__)
// F16 against F16 with the F16C conversion: 8 halves per instruction, the
// differences taken in double.
__attribute__((target("avx2,f16c,fma"))) double SquaredDistanceF16Avx2(
    const uint8_t* x, const uint8_t* r, size_t n) {
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 fx = _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 2 * i)));
    const __m256 fr = _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * i)));
    const __m256d d0 =
        _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(fx)),
                      _mm256_cvtps_pd(_mm256_castps256_ps128(fr)));
    const __m256d d1 =
        _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(fx, 1)),
                      _mm256_cvtps_pd(_mm256_extractf128_ps(fr, 1)));
    acc0 = _mm256_fmadd_pd(d0, d0, acc0);
    acc1 = _mm256_fmadd_pd(d1, d1, acc1);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(acc0, acc1));
  double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  if (i < n) {
    sum += displacement_internal::SquaredDistancePortable(
        x + 2 * i, DType::kF16, r + 2 * i, DType::kF16, n - i);
  }
  return sum;
}
#endif

}  // namespace

double SquaredDistance(const uint8_t* x, DType dx, const uint8_t* r, DType dr,
                       size_t n) {
#if defined(__x86_64__)
  static const bool f16c = __builtin_cpu_supports("avx2") &&
                           __builtin_cpu_supports("f16c") &&
                           __builtin_cpu_supports("fma");
  if (f16c && dx == DType::kF16 && dr == DType::kF16) {
    return SquaredDistanceF16Avx2(x, r, n);
  }
#endif
  return displacement_internal::SquaredDistancePortable(x, dx, r, dr, n);
}

}  // namespace garden

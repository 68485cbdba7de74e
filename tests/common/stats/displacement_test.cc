// The MSD kernels against a brute-force sum in long double over the decoded
// values: every 16-bit code, random data of every dtype pairing, and
// lengths that leave tails for the 8-wide and 4-wide loops.
#include "common/stats/displacement.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/stats/histogram.h"
#include "gtest/gtest.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

using displacement_internal::SquaredDistancePortable;

const uint8_t* Bytes(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// The stored bytes of `values` in `dtype`, and the values as stored.
struct Stored {
  std::string bytes;
  std::vector<double> values;
};

Stored Store(const std::vector<double>& xs, DType dtype) {
  Stored out;
  switch (dtype) {
    case DType::kF64:
      out.bytes.resize(xs.size() * 8);
      std::memcpy(out.bytes.data(), xs.data(), out.bytes.size());
      break;
    case DType::kF32:
      out.bytes = testing::F32Bytes(std::vector<float>(xs.begin(), xs.end()));
      break;
    case DType::kF16:
      out.bytes = testing::F16Bytes(std::vector<float>(xs.begin(), xs.end()));
      break;
    default:
      out.bytes = testing::BF16Bytes(std::vector<float>(xs.begin(), xs.end()));
      break;
  }
  out.values.resize(xs.size());
  DecodeInto(Bytes(out.bytes), xs.size(), dtype, out.values.data());
  return out;
}

// Sum of squared differences of the first n values, in long double.
long double Brute(const std::vector<double>& x, const std::vector<double>& r,
                  size_t n) {
  long double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const long double d = static_cast<long double>(x[i]) - r[i];
    sum += d * d;
  }
  return sum;
}

std::vector<double> Gaussian(size_t n, double sd, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, sd);
  std::vector<double> xs(n);
  for (double& x : xs) x = dist(rng);
  return xs;
}

// The bytes of 16-bit codes.
std::string CodeBytes(const std::vector<uint16_t>& codes) {
  std::string bytes(codes.size() * 2, '\0');
  std::memcpy(bytes.data(), codes.data(), bytes.size());
  return bytes;
}

TEST(DisplacementTest, EveryFiniteHalfAgainstZeroIsItsSquareExactly) {
  // A half squared fits a double exactly, and so does a single term.
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    for (uint32_t c = 0; c < 65536; ++c) {
      const std::string x = CodeBytes({static_cast<uint16_t>(c)});
      const std::string zero = CodeBytes({0});
      const double v =
          dtype == DType::kF16 ? DecodeF16(c) : DecodeBF16(c);
      const double got = SquaredDistance(Bytes(x), dtype, Bytes(zero), dtype, 1);
      if (std::isnan(v)) {
        EXPECT_TRUE(std::isnan(got)) << c;
      } else if (std::isinf(v)) {
        EXPECT_TRUE(std::isinf(got)) << c;
      } else {
        ASSERT_EQ(got, v * v) << "code " << c;
      }
    }
  }
}

TEST(DisplacementTest, AllFiniteCodesAgainstTheirNeighbours) {
  // x: every finite code once; r: the code 4097 places further on, so that
  // every pairing of exponents occurs. Both the F16C and the portable path.
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    std::vector<uint16_t> finite;
    for (uint32_t c = 0; c < 65536; ++c) {
      const double v = dtype == DType::kF16 ? DecodeF16(c) : DecodeBF16(c);
      // BF16 reaches 3.4e38: its squared differences still fit a double.
      if (std::isfinite(v)) finite.push_back(static_cast<uint16_t>(c));
    }
    std::vector<uint16_t> shifted(finite.size());
    for (size_t i = 0; i < finite.size(); ++i) {
      shifted[i] = finite[(i + 4097) % finite.size()];
    }
    const std::string x = CodeBytes(finite), r = CodeBytes(shifted);
    std::vector<double> xv(finite.size()), rv(finite.size());
    DecodeInto(Bytes(x), finite.size(), dtype, xv.data());
    DecodeInto(Bytes(r), finite.size(), dtype, rv.data());
    for (size_t n : {finite.size(), finite.size() - 1, size_t{8}, size_t{7},
                     size_t{13}}) {
      const long double want = Brute(xv, rv, n);
      const double fast = SquaredDistance(Bytes(x), dtype, Bytes(r), dtype, n);
      const double portable =
          SquaredDistancePortable(Bytes(x), dtype, Bytes(r), dtype, n);
      EXPECT_NEAR(fast, want, 1e-13 * want) << "n " << n;
      EXPECT_NEAR(portable, want, 1e-13 * want) << "n " << n;
    }
  }
}

TEST(DisplacementTest, RandomDataOfEveryDtypePairingAndOddLengths) {
  const std::vector<DType> dtypes = {DType::kF64, DType::kF32, DType::kF16,
                                     DType::kBF16};
  const size_t size = 3 * 2048 + 5;  // more than one decode block, odd tail
  unsigned seed = 1;
  for (DType dx : dtypes) {
    for (DType dr : dtypes) {
      const Stored x = Store(Gaussian(size, 0.02, seed++), dx);
      const Stored r = Store(Gaussian(size, 0.03, seed++), dr);
      for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{9},
                       size_t{2047}, size_t{2049}, size}) {
        const long double want = Brute(x.values, r.values, n);
        const double got =
            SquaredDistance(Bytes(x.bytes), dx, Bytes(r.bytes), dr, n);
        EXPECT_NEAR(got, want, 1e-13 * want)
            << DTypeName(dx) << " vs " << DTypeName(dr) << ", n " << n;
        if (dx != DType::kF16 || dr != DType::kF16) {  // the only other path
          EXPECT_EQ(got, SquaredDistancePortable(Bytes(x.bytes), dx,
                                                 Bytes(r.bytes), dr, n));
        }
      }
    }
  }
}

TEST(DisplacementTest, NonFiniteValuesPropagate) {
  const std::vector<float> finite(19, 0.5f);
  std::vector<float> with_nan = finite, with_inf = finite;
  with_nan[17] = NAN;  // in the 8-wide loop's tail
  with_inf[3] = INFINITY;
  for (auto encode : {&testing::F16Bytes, &testing::BF16Bytes}) {
    const DType dtype =
        encode == &testing::F16Bytes ? DType::kF16 : DType::kBF16;
    const std::string a = encode(finite), n = encode(with_nan),
                      i = encode(with_inf);
    EXPECT_EQ(SquaredDistance(Bytes(a), dtype, Bytes(a), dtype, 19), 0.0);
    EXPECT_TRUE(
        std::isnan(SquaredDistance(Bytes(n), dtype, Bytes(a), dtype, 19)));
    EXPECT_TRUE(
        std::isinf(SquaredDistance(Bytes(i), dtype, Bytes(a), dtype, 19)));
  }
}

}  // namespace
}  // namespace garden

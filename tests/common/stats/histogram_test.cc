// Histogram, moments and 16-bit decoding against brute-force references.
#include "common/stats/histogram.h"

#include <cmath>
#include <cstring>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/brute_force.h"

namespace garden {
namespace {

using testing::Brute;
using testing::BruteHistogram;
using testing::BruteMoments;
using testing::BruteStats;
using ::testing::HasSubstr;

std::string AsF32(const std::vector<double>& xs) {
  std::string bytes(xs.size() * 4, '\0');
  for (size_t i = 0; i < xs.size(); ++i) {
    const float f = static_cast<float>(xs[i]);
    std::memcpy(bytes.data() + 4 * i, &f, 4);
  }
  return bytes;
}

std::string AsF64(const std::vector<double>& xs) {
  std::string bytes(xs.size() * 8, '\0');
  std::memcpy(bytes.data(), xs.data(), bytes.size());
  return bytes;
}

absl::Span<const uint8_t> Span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::vector<double> Gaussian(size_t n, double mean, double sd, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(mean, sd);
  std::vector<double> xs(n);
  for (auto& x : xs) x = dist(rng);
  return xs;
}

TEST(DecodeTest, F16MatchesTheCompilersHalfType) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    _Float16 h;
    const uint16_t b = static_cast<uint16_t>(bits);
    std::memcpy(&h, &b, 2);
    const double expected = static_cast<double>(h);
    const double got = DecodeF16(b);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(got)) << bits;
    } else {
      ASSERT_EQ(got, expected) << "bits " << bits;
      ASSERT_EQ(std::signbit(got), std::signbit(expected)) << bits;
    }
  }
}

TEST(DecodeTest, BF16IsTheTopHalfOfAFloat) {
  for (uint32_t bits = 0; bits < 65536; bits += 7) {
    const uint32_t wide = bits << 16;
    float f;
    std::memcpy(&f, &wide, 4);
    const double got = DecodeBF16(static_cast<uint16_t>(bits));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(got));
    } else {
      EXPECT_EQ(got, static_cast<double>(f));
    }
  }
}

TEST(BinnerTest, RejectsBadParameters) {
  EXPECT_THAT(Binner::Create(0, 1, 0).status().message(),
              HasSubstr("bins must be in [1, 65536], got 0"));
  EXPECT_EQ(Binner::Create(0, 1, 65537).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Binner::Create(0, 1, 65536).ok());
  EXPECT_THAT(Binner::Create(1, 1, 4).status().message(), HasSubstr("lo < hi"));
  EXPECT_EQ(Binner::Create(2, 1, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Binner::Create(NAN, 1, 4).status().message(),
              HasSubstr("finite"));
  EXPECT_EQ(Binner::Create(0, INFINITY, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Binner::Create(-1.7e308, 1.7e308, 4).status().message(),
              HasSubstr("overflows"));
}

TEST(BinnerTest, EdgesFollowNumpy) {
  // Every edge value lands in the bin it opens; hi lands in the last bin.
  for (int bins : {1, 3, 7, 10, 64, 1000}) {
    for (auto [lo, hi] : {std::pair{-0.1, 0.1}, std::pair{0.0, 1.0},
                          std::pair{-3.7, 12.3}, std::pair{1e-8, 3e-8}}) {
      auto binner = *Binner::Create(lo, hi, bins);
      std::vector<double> xs;
      for (double e : binner.edges()) {
        xs.push_back(e);
        xs.push_back(std::nextafter(e, -INFINITY));
        xs.push_back(std::nextafter(e, INFINITY));
      }
      const BruteHistogram want = Brute(xs, lo, hi, bins);
      std::vector<uint64_t> counts(bins, 0);
      uint64_t under = 0, over = 0;
      for (double x : xs) {
        const int64_t b = binner.Locate(x);
        if (b < 0)
          ++under;
        else if (b >= bins)
          ++over;
        else
          ++counts[b];
      }
      EXPECT_EQ(counts, want.counts)
          << bins << " bins over " << lo << ":" << hi;
      EXPECT_EQ(under, want.underflow);
      EXPECT_EQ(over, want.overflow);
      EXPECT_EQ(binner.Locate(hi), bins - 1);
      EXPECT_EQ(binner.Locate(lo), 0);
    }
  }
}

TEST(BinnerTest, RejectsRangesTooNarrowForTheirBins) {
  auto subnormal = Binner::Create(0, 5e-324, 4);
  EXPECT_EQ(subnormal.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(subnormal.status().message(), HasSubstr("too narrow for 4 bins"));
  EXPECT_FALSE(Binner::Create(1.0, std::nextafter(1.0, 2.0), 2).ok());
  EXPECT_TRUE(Binner::Create(1.0, std::nextafter(1.0, 2.0), 1).ok());
  EXPECT_TRUE(Binner::Create(0, 1e-300, 65536).ok());
}

TEST(AutoRangeTest, FollowsNumpy) {
  EXPECT_EQ(AutoRange(-1, 2, 64), std::make_pair(-1.0, 2.0));
  EXPECT_EQ(AutoRange(1, 1, 64), std::make_pair(0.5, 1.5));
  EXPECT_EQ(AutoRange(INFINITY, -INFINITY, 64), std::make_pair(0.0, 1.0));
  // Too narrow for its bins: widened like a zero-width range.
  EXPECT_EQ(AutoRange(0, 5e-324, 4), std::make_pair(-0.5, 0.5 + 5e-324));
}

TEST(ScanValuesTest, F32MatchesBruteForce) {
  std::vector<double> xs = Gaussian(100000, 0.01, 0.05, 1);
  for (auto& x : xs) x = static_cast<float>(x);  // what F32 storage holds
  xs.push_back(INFINITY);
  xs.push_back(-INFINITY);
  xs.push_back(NAN);
  const std::string bytes = AsF32(xs);
  auto binner = *Binner::Create(-0.1, 0.1, 37);
  auto scan = ScanValues(Span(bytes), DType::kF32, &binner);
  ASSERT_TRUE(scan.ok()) << scan.status();
  const BruteHistogram want = Brute(xs, -0.1, 0.1, 37);
  EXPECT_EQ(scan->histogram->counts, want.counts);
  EXPECT_EQ(scan->histogram->underflow, want.underflow);  // -inf included
  EXPECT_EQ(scan->histogram->overflow, want.overflow);    // +inf included
  const auto& s = scan->summary;
  EXPECT_EQ(s.finite(), 100000u);
  EXPECT_EQ(s.nan, 1u);
  EXPECT_EQ(s.posinf, 1u);
  EXPECT_EQ(s.neginf, 1u);
  const BruteMoments m = BruteStats(xs);
  EXPECT_NEAR(s.moments.mean, m.mean, 1e-15);
  EXPECT_NEAR(s.moments.Variance(), m.var, 1e-15);
  EXPECT_NEAR(s.moments.Skewness(), m.skew, 1e-10);
  EXPECT_NEAR(s.moments.ExcessKurtosis(), m.kurt, 1e-10);
  double lo = INFINITY, hi = -INFINITY;
  for (double x : xs)
    if (std::isfinite(x)) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
  EXPECT_EQ(s.min, lo);
  EXPECT_EQ(s.max, hi);
}

TEST(ScanValuesTest, MomentsStayAccurateFarFromZero) {
  // A mean 1e4 standard deviations away: naive power sums would lose every
  // digit of skewness and kurtosis.
  std::vector<double> xs = Gaussian(200000, 1e4, 1.0, 2);
  for (auto& x : xs) x = x * x * 1e-4;  // skewed
  const std::string bytes = AsF64(xs);
  auto scan = ScanValues(Span(bytes), DType::kF64, nullptr);
  ASSERT_TRUE(scan.ok());
  EXPECT_FALSE(scan->histogram.has_value());
  const BruteMoments m = BruteStats(xs);
  EXPECT_NEAR(scan->summary.moments.mean / m.mean, 1.0, 1e-14);
  EXPECT_NEAR(scan->summary.moments.Variance() / m.var, 1.0, 1e-9);
  EXPECT_NEAR(scan->summary.moments.Skewness(), m.skew, 1e-7);
  EXPECT_NEAR(scan->summary.moments.ExcessKurtosis(), m.kurt, 1e-6);
}

TEST(MomentsTest, MergeEqualsWhole) {
  const std::vector<double> xs = Gaussian(1001, 3.0, 2.0, 3);
  const Moments whole = Moments::Of(xs.data(), nullptr, xs.size());
  Moments merged;
  for (size_t start = 0; start < xs.size(); start += 97) {
    const size_t n = std::min<size_t>(97, xs.size() - start);
    merged.Merge(Moments::Of(xs.data() + start, nullptr, n));
  }
  EXPECT_DOUBLE_EQ(merged.n, whole.n);
  EXPECT_NEAR(merged.mean, whole.mean, 1e-13);
  EXPECT_NEAR(merged.m2 / whole.m2, 1, 1e-12);
  EXPECT_NEAR(merged.Skewness(), whole.Skewness(), 1e-11);
  EXPECT_NEAR(merged.ExcessKurtosis(), whole.ExcessKurtosis(), 1e-11);
}

TEST(MomentsTest, UndefinedStatisticsAreNaN) {
  Moments empty;
  EXPECT_TRUE(std::isnan(empty.StdDev()));
  const double same[] = {2.0, 2.0, 2.0};
  const Moments constant = Moments::Of(same, nullptr, 3);
  EXPECT_EQ(constant.StdDev(), 0.0);
  EXPECT_TRUE(std::isnan(constant.Skewness()));
  EXPECT_TRUE(std::isnan(constant.ExcessKurtosis()));
}

// The 16-bit path (value counts) and the generic path must agree exactly.
void CheckSixteenBit(DType dtype) {
  std::vector<double> xs = Gaussian(300001, -0.002, 0.03, 4);
  // Round through the 16-bit format so the reference sees stored values.
  std::string bytes(xs.size() * 2, '\0');
  for (size_t i = 0; i < xs.size(); ++i) {
    uint16_t b;
    if (dtype == DType::kF16) {
      _Float16 h = static_cast<_Float16>(xs[i]);
      std::memcpy(&b, &h, 2);
      xs[i] = DecodeF16(b);
    } else {
      float f = static_cast<float>(xs[i]);
      uint32_t w;
      std::memcpy(&w, &f, 4);
      b = static_cast<uint16_t>(w >> 16);  // truncation is fine for a test
      xs[i] = DecodeBF16(b);
    }
    std::memcpy(bytes.data() + 2 * i, &b, 2);
  }
  auto counts = CodeCounts::Count(Span(bytes), dtype);
  ASSERT_TRUE(counts.ok()) << counts.status();
  auto binner = *Binner::Create(-0.05, 0.07, 64);
  const Histogram h = counts->Bin(binner);
  const BruteHistogram want = Brute(xs, -0.05, 0.07, 64);
  EXPECT_EQ(h.counts, want.counts);
  EXPECT_EQ(h.underflow, want.underflow);
  EXPECT_EQ(h.overflow, want.overflow);
  auto scan = ScanValues(Span(bytes), dtype, &binner);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->histogram->counts, h.counts);
  const ValueSummary s = counts->Summarize();
  const BruteMoments m = BruteStats(xs);
  EXPECT_EQ(s.finite(), xs.size());
  EXPECT_NEAR(s.moments.mean, m.mean, 1e-15);
  EXPECT_NEAR(s.moments.Variance() / m.var, 1, 1e-12);
  EXPECT_NEAR(s.moments.Skewness(), m.skew, 1e-10);
  EXPECT_NEAR(s.moments.ExcessKurtosis(), m.kurt, 1e-10);
  EXPECT_EQ(s.min, scan->summary.min);
  EXPECT_EQ(s.max, scan->summary.max);
}

TEST(CodeCountsTest, F16MatchesBruteForce) { CheckSixteenBit(DType::kF16); }
TEST(CodeCountsTest, BF16MatchesBruteForce) { CheckSixteenBit(DType::kBF16); }

TEST(CodeCountsTest, NonFiniteValuesAreCountedApart) {
  // F16: 0x7c00 +inf, 0xfc00 -inf, 0x7e00 NaN, 0x3c00 1.0
  const uint16_t bits[] = {0x7c00, 0xfc00, 0x7e00, 0x3c00, 0x3c00};
  const std::string bytes(reinterpret_cast<const char*>(bits), sizeof bits);
  auto counts = CodeCounts::Count(Span(bytes), DType::kF16);
  ASSERT_TRUE(counts.ok());
  const ValueSummary s = counts->Summarize();
  EXPECT_EQ(s.finite(), 2u);
  EXPECT_EQ(s.nan, 1u);
  EXPECT_EQ(s.posinf, 1u);
  EXPECT_EQ(s.neginf, 1u);
  EXPECT_EQ(s.min, 1.0);
  EXPECT_EQ(s.max, 1.0);
  const Histogram h = counts->Bin(*Binner::Create(0, 2, 2));
  EXPECT_EQ(h.counts, (std::vector<uint64_t>{0, 2}));
  EXPECT_EQ(h.underflow, 1u);
  EXPECT_EQ(h.overflow, 1u);
}

TEST(ScanErrorsTest, BadInputIsReported) {
  const std::string odd(3, '\0');
  EXPECT_EQ(CodeCounts::Count(Span(odd), DType::kF16).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ScanValues(Span(odd), DType::kI32, nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CodeCounts::Count(Span(odd), DType::kF32).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ScanErrorsTest, CancelStopsTheScan) {
  const std::string bytes(size_t{8} << 20, '\0');
  CancelFlag cancel{true};
  EXPECT_EQ(
      CodeCounts::Count(Span(bytes), DType::kF16, &cancel).status().code(),
      absl::StatusCode::kCancelled);
  EXPECT_EQ(
      ScanValues(Span(bytes), DType::kF32, nullptr, &cancel).status().code(),
      absl::StatusCode::kCancelled);
}

TEST(ScanValuesTest, EmptyTensor) {
  const std::string none;
  auto scan = ScanValues(Span(none), DType::kF32, nullptr);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->summary.finite(), 0u);
  auto counts = CodeCounts::Count(Span(none), DType::kBF16);
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->Summarize().finite(), 0u);
}

}  // namespace
}  // namespace garden

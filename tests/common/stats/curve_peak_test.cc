// FindCurvePeak: an interior maximum is a peak; one at either end is not.
#include "common/stats/curve_peak.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace garden {
namespace {

CurvePeak Peak(const std::vector<double>& y) {
  auto p = FindCurvePeak(y);
  EXPECT_TRUE(p.has_value());
  return p.value_or(CurvePeak{});
}

TEST(FindCurvePeakTest, AnInteriorMaximumIsAPeak) {
  const CurvePeak p = Peak({0, 3, 5, 4, 4.5});
  EXPECT_EQ(p.largest, 2u);
  EXPECT_TRUE(p.interior);
  EXPECT_EQ(p.trend, Trend::kNeither);
  EXPECT_EQ(Peak({0, 2, 2, 1}).largest, 1u);  // the first of equal values
}

TEST(FindCurvePeakTest, AMaximumAtAnEndIsNot) {
  CurvePeak p = Peak({0, 1, 1, 3});
  EXPECT_EQ(p.largest, 3u);
  EXPECT_FALSE(p.interior);
  EXPECT_EQ(p.trend, Trend::kIncreasing);
  p = Peak({3, 2, 2.5, 4});  // largest last, not monotonic
  EXPECT_FALSE(p.interior);
  EXPECT_EQ(p.trend, Trend::kNeither);
  p = Peak({5, 4, 0});
  EXPECT_EQ(p.largest, 0u);
  EXPECT_FALSE(p.interior);
  EXPECT_EQ(p.trend, Trend::kDecreasing);
  EXPECT_EQ(Peak({1, 1}).trend, Trend::kNeither);
  EXPECT_FALSE(Peak({7}).interior);
}

TEST(FindCurvePeakTest, NanIsSkipped) {
  const CurvePeak p = Peak({NAN, 1, 4, NAN, 2, NAN});
  EXPECT_EQ(p.largest, 2u);
  EXPECT_TRUE(p.interior);
  // An end is the first or last point with a value.
  EXPECT_FALSE(Peak({NAN, 1, 2, NAN}).interior);
  EXPECT_FALSE(FindCurvePeak({}).has_value());
  EXPECT_FALSE(FindCurvePeak(std::vector<double>{NAN}).has_value());
}

}  // namespace
}  // namespace garden

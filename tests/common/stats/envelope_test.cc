// Envelope: per-step statistics across runs.
#include "common/stats/envelope.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace garden {
namespace {

TEST(EnvelopeTest, MeanExtremesAndPopulationSpread) {
  const std::vector<EnvelopePoint> points =
      Envelope({{{0, 1.0}, {10, 2.0}}, {{0, 3.0}, {10, 4.0}}, {{0, 8.0}, {10, 6.0}}});
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].step, 0);
  EXPECT_EQ(points[0].runs, 3);
  EXPECT_DOUBLE_EQ(points[0].mean, 4.0);
  EXPECT_DOUBLE_EQ(points[0].min, 1.0);
  EXPECT_DOUBLE_EQ(points[0].max, 8.0);
  // numpy.std([1, 3, 8]) = sqrt(26/3)
  EXPECT_DOUBLE_EQ(points[0].std, std::sqrt(26.0 / 3.0));
  EXPECT_EQ(points[1].step, 10);
  EXPECT_DOUBLE_EQ(points[1].mean, 4.0);
  EXPECT_DOUBLE_EQ(points[1].std, std::sqrt(8.0 / 3.0));
}

TEST(EnvelopeTest, StepsARunLacksOrCannotMeasure) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<EnvelopePoint> points =
      Envelope({{{0, 1.0}, {5, nan}}, {{0, 2.0}, {5, 7.0}, {9, 1.5}}});
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points[0].runs, 2);
  EXPECT_EQ(points[1].step, 5);
  EXPECT_EQ(points[1].runs, 1);
  EXPECT_DOUBLE_EQ(points[1].mean, 7.0);
  EXPECT_DOUBLE_EQ(points[1].std, 0.0);
  EXPECT_EQ(points[2].step, 9);
  EXPECT_EQ(points[2].runs, 1);
  EXPECT_TRUE(Envelope({}).empty());
}

}  // namespace
}  // namespace garden

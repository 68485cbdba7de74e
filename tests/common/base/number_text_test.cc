// ExactDouble: the fewest digits that read back as the same double.
#include "common/base/number_text.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "gtest/gtest.h"

namespace garden {
namespace {

TEST(ExactDoubleTest, ShowsTheDigitsThatMatter) {
  EXPECT_EQ(ExactDouble(1.0000001), "1.0000001");
  EXPECT_EQ(ExactDouble(1), "1");
  EXPECT_EQ(ExactDouble(0.1), "0.1");
  EXPECT_EQ(ExactDouble(-2.5), "-2.5");
  EXPECT_EQ(ExactDouble(1e-300), "1e-300");
  EXPECT_EQ(ExactDouble(std::nextafter(1.0, 2.0)), "1.0000000000000002");
  EXPECT_EQ(ExactDouble(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(ExactDouble(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(ExactDouble(std::nan("")), "nan");
}

TEST(ExactDoubleTest, ReadsBackAsTheSameValue) {
  for (double x : {3.141592653589793, 1.0 / 3, 123456789.123456789, 5e-324,
                   std::numeric_limits<double>::max()}) {
    EXPECT_EQ(std::strtod(ExactDouble(x).c_str(), nullptr), x) << ExactDouble(x);
  }
}

}  // namespace
}  // namespace garden

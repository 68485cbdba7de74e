#include "common/trainer.h"

#include "gtest/gtest.h"

namespace garden {
namespace {

TEST(LrScheduleTest, Placeholder) { EXPECT_GT(LrSchedule().At(1), 0); }

}  // namespace
}  // namespace garden

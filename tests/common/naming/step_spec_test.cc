// Step selections: parsing, resolution against present steps, Pythia's
// schedule.
#include "common/naming/step_spec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace garden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(StepSpecParseTest, All) {
  auto spec = StepSpec::Parse("all");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, StepSpec::Kind::kAll);
  EXPECT_EQ(StepSpec::Parse(" all ")->kind, StepSpec::Kind::kAll);
}

TEST(StepSpecParseTest, List) {
  auto spec = StepSpec::Parse("0,1,2,512");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, StepSpec::Kind::kList);
  EXPECT_THAT(spec->list, ElementsAre(0, 1, 2, 512));
  EXPECT_THAT(StepSpec::Parse("1000")->list, ElementsAre(1000));
  EXPECT_THAT(StepSpec::Parse("3, 1 ,2")->list, ElementsAre(3, 1, 2));
  EXPECT_EQ(StepSpec::Parse("3,1,2")->ToString(), "3,1,2");
}

TEST(StepSpecParseTest, Range) {
  auto spec = StepSpec::Parse("1000:5000");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, StepSpec::Kind::kRange);
  EXPECT_EQ(spec->first, 1000);
  EXPECT_EQ(spec->last, 5000);
  EXPECT_EQ(spec->ToString(), "1000:5000");
  EXPECT_TRUE(StepSpec::Parse("7:7").ok());
}

TEST(StepSpecParseTest, MalformedInputNamesTheProblem) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "expected all"},
           {"1,,2", "empty step"},
           {"1,2,", "empty step"},
           {"-5", "\"-5\" is not a non-negative integer"},
           {"+5", "not a non-negative integer"},
           {"abc", "\"abc\" is not a non-negative integer"},
           {"1.5", "not a non-negative integer"},
           {"5:3", "range start 5 is after its end 3"},
           {"1:2:3", "a range is FIRST:LAST"},
           {":", "empty step"},
           {"10:", "empty step"},
           {"99999999999999999999", "exceeds the limit"},
           {"ALL", "not a non-negative integer"},
       }) {
    auto spec = StepSpec::Parse(c.text);
    ASSERT_FALSE(spec.ok()) << c.text;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument)
        << c.text;
    EXPECT_THAT(spec.status().message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(StepSpecResolveTest, SelectsPresentSteps) {
  const std::vector<int64_t> present = {0, 1, 2, 4, 1000, 2000, 3000};
  EXPECT_EQ(*StepSpec::Parse("all")->Resolve(present, "m"), present);
  EXPECT_THAT(*StepSpec::Parse("4,0,4,2")->Resolve(present, "m"),
              ElementsAre(0, 2, 4));
  EXPECT_THAT(*StepSpec::Parse("1000:2500")->Resolve(present, "m"),
              ElementsAre(1000, 2000));
  EXPECT_THAT(*StepSpec::Parse("0:1000000")->Resolve(present, "m"),
              ElementsAre(0, 1, 2, 4, 1000, 2000, 3000));
}

TEST(StepSpecResolveTest, MissingStepsNameTheNearest) {
  const std::vector<int64_t> present = {0, 1, 2, 4, 1000, 2000, 3000};
  auto missing = StepSpec::Parse("0,1500")->Resolve(present, "pythia-70m");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("step 1500 is not present for pythia-70m; nearest "
                        "present: 1000, 2000"));
  auto empty = StepSpec::Parse("5:999")->Resolve(present, "pythia-70m");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(empty.status().message(),
              HasSubstr("no step of pythia-70m in 5:999"));
  EXPECT_EQ(StepSpec::Parse("all")->Resolve({}, "m").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(StepSpecResolveTest, RejectsBadStructuredSelections) {
  StepSpec negative;
  negative.kind = StepSpec::Kind::kList;
  negative.list = {-3};
  EXPECT_EQ(negative.Resolve({0, 1}, "m").status().code(),
            absl::StatusCode::kInvalidArgument);
  StepSpec empty_list;
  empty_list.kind = StepSpec::Kind::kList;
  EXPECT_EQ(empty_list.Resolve({0, 1}, "m").status().code(),
            absl::StatusCode::kInvalidArgument);
  StepSpec reversed;
  reversed.kind = StepSpec::Kind::kRange;
  reversed.first = 9;
  reversed.last = 2;
  EXPECT_EQ(reversed.Resolve({0, 1}, "m").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(NearestStepsTest, PicksClosest) {
  EXPECT_THAT(NearestSteps({0, 1000, 2000, 3000}, 1400),
              ElementsAre(1000, 2000));
  EXPECT_THAT(NearestSteps({0, 1000, 2000, 3000}, 5000),
              ElementsAre(2000, 3000));
  EXPECT_THAT(NearestSteps({7}, 5000), ElementsAre(7));
  EXPECT_TRUE(NearestSteps({}, 5).empty());
}

TEST(FormatStepsTest, ElidesLongLists) {
  EXPECT_EQ(FormatSteps({1, 2}), "1, 2");
  EXPECT_EQ(FormatSteps({}), "(none)");
  std::vector<int64_t> many;
  for (int i = 0; i < 20; ++i) many.push_back(i);
  EXPECT_EQ(FormatSteps(many), "0, 1, 2, 3, ... (12 more), 16, 17, 18, 19");
}

TEST(PythiaScheduleTest, Has154PublishedSteps) {
  const auto& s = PythiaSchedule();
  ASSERT_EQ(s.size(), 154u);
  EXPECT_THAT(std::vector<int64_t>(s.begin(), s.begin() + 12),
              ElementsAre(0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000));
  EXPECT_EQ(s[12], 2000);
  EXPECT_EQ(s.back(), 143000);
  EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
}

}  // namespace
}  // namespace garden

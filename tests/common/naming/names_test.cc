// Which names requests may carry, and how model folders are named.
#include "common/naming/names.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace garden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ValidateNameTest, AcceptsPlainNames) {
  for (const char* ok :
       {"pythia", "70m", "1.4b", "embed_out.weight",
        "gpt_neox.layers.0.mlp.dense_h_to_4h.bias", "a-b_c.d"}) {
    EXPECT_TRUE(ValidateName("x", ok).ok()) << ok;
  }
}

TEST(ValidateNameTest, RejectsPathsAndControlBytes) {
  struct Case {
    std::string value;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "is empty"},
           {"../etc", "outside [A-Za-z0-9._-]"},
           {"..", "contains \"..\""},
           {".", "contains \"..\""},
           {"a..b", "contains \"..\""},
           {"a/b", "outside [A-Za-z0-9._-]"},
           {std::string("a\0b", 3), "\\x00"},
           {"a b", "outside"},
           {"ü", "outside"},
           {std::string(300, 'a'), "the limit is 256"},
       }) {
    const absl::Status s = ValidateName("size", c.value);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.value;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.value;
    EXPECT_THAT(s.message(), HasSubstr("size")) << c.value;
  }
}

TEST(CanonicalVariantTest, AcceptsAliases) {
  EXPECT_EQ(*CanonicalVariant("standard"), "standard");
  EXPECT_EQ(*CanonicalVariant("NDD"), "standard");
  EXPECT_EQ(*CanonicalVariant("deduped"), "deduped");
  EXPECT_EQ(*CanonicalVariant("DD"), "deduped");
  EXPECT_EQ(*CanonicalVariant("dd"), "deduped");
  auto bad = CanonicalVariant("dedup");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("\"dedup\" is unknown"));
}

TEST(ModelKeyTest, ParsesRepoNames) {
  auto key = ModelKey::FromRepoName("pythia-70m-deduped");
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->suite, "pythia");
  EXPECT_EQ(key->size, "70m");
  EXPECT_EQ(key->variant, "deduped");
  EXPECT_EQ(key->Name(), "pythia-70m-deduped");
  EXPECT_EQ(ModelKey::FromRepoName("pythia-1.4b")->variant, "standard");
  EXPECT_EQ(ModelKey::FromRepoName("pythia-1.4b")->Name(), "pythia-1.4b");
  for (const char* bad :
       {"pythia", "pythia-70m-v0", "pythia-70m-deduped-v0", "Pythia-70m",
        "pythia-..", "pythia--deduped", "-70m"}) {
    EXPECT_FALSE(ModelKey::FromRepoName(bad).has_value()) << bad;
  }
}

TEST(ModelKeyTest, ParsesTrainingRuns) {
  // PolyPythias' repositories: SUITE-SIZE[-deduped][-RUN].
  const struct {
    const char* name;
    const char* size;
    const char* variant;
    const char* run;
  } cases[] = {{"pythia-160m-seed3", "160m", "standard", "seed3"},
               {"pythia-160m-weight-seed2", "160m", "standard", "weight-seed2"},
               {"pythia-160m-data-seed1", "160m", "standard", "data-seed1"},
               {"pythia-160m-deduped-seed10", "160m", "deduped", "seed10"},
               {"pythia-160m-deduped-data-seed3", "160m", "deduped", "data-seed3"}};
  for (const auto& c : cases) {
    auto key = ModelKey::FromRepoName(c.name);
    ASSERT_TRUE(key.has_value()) << c.name;
    EXPECT_EQ(key->size, c.size) << c.name;
    EXPECT_EQ(key->variant, c.variant) << c.name;
    EXPECT_EQ(key->run, c.run) << c.name;
    EXPECT_EQ(key->Name(), c.name);
  }
  EXPECT_EQ(ModelKey::FromRepoName("pythia-160m")->run, "");
  for (const char* bad : {"pythia-160m-seed", "pythia-160m-seedx", "pythia-160m-model-seed1",
                          "pythia-160m-seed1-deduped", "pythia-160m-seed1234567890"}) {
    EXPECT_FALSE(ModelKey::FromRepoName(bad).has_value()) << bad;
  }
}

TEST(MakeModelKeyTest, TakesARun) {
  auto key = MakeModelKey("pythia", "160m", "standard", "Seed3");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->run, "seed3");
  EXPECT_EQ(key->Name(), "pythia-160m-seed3");
  EXPECT_NE(*key, *MakeModelKey("pythia", "160m", "standard"));
  for (const char* bad : {"seed", "3", "weight-seed", "seed3/..", "seed-3", "model-seed1"}) {
    absl::StatusOr<ModelKey> r = MakeModelKey("pythia", "160m", "standard", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(MakeModelKey("pythia", "160m", "standard", "seedling")
                .status()
                .message()
                .find("seedN, weight-seedN or data-seedN"),
            std::string::npos);
}

TEST(MakeModelKeyTest, DefaultsAndCanonicalises) {
  auto key = MakeModelKey("", "70M", "DD");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->Name(), "pythia-70m-deduped");
  EXPECT_EQ(MakeModelKey("pythia", "70m", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeModelKey("pythia/..", "70m", "DD").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeModelKey("pythia", "../../etc", "DD").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ClosestNamesTest, AnywhereRanksByTheClosestPartOfEachName) {
  const std::vector<std::string> names = {"embed_out.weight",
                                          "gpt_neox.layers.3.attention.dense.weight",
                                          "gpt_neox.layers.1.mlp.dense_h_to_4h.weight"};
  // A typo of a part: whole-name distance prefers the short name.
  EXPECT_EQ(ClosestNames("atention.dense", names, 1, /*anywhere=*/true),
            std::vector<std::string>{"gpt_neox.layers.3.attention.dense.weight"});
  EXPECT_EQ(ClosestNames("atention.dense", names, 1),
            std::vector<std::string>{"embed_out.weight"});
  EXPECT_EQ(ClosestNames("dense_h_to_4h", names, 1, true),
            std::vector<std::string>{"gpt_neox.layers.1.mlp.dense_h_to_4h.weight"});
}

TEST(ClosestNamesTest, PrefersContainingThenEditDistance) {
  const std::vector<std::string> have = {
      "embed_out.weight", "gpt_neox.embed_in.weight",
      "gpt_neox.final_layer_norm.weight", "gpt_neox.final_layer_norm.bias"};
  EXPECT_THAT(ClosestNames("embed_out.weigth", have, 1),
              ElementsAre("embed_out.weight"));
  EXPECT_THAT(ClosestNames("final_layer_norm", have, 2),
              ElementsAre("gpt_neox.final_layer_norm.bias",
                          "gpt_neox.final_layer_norm.weight"));
}

}  // namespace
}  // namespace garden

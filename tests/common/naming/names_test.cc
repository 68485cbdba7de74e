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

// Causal unmasking on a tiny random model: the prefix lengths chosen, and
// the agreement and recovered fraction of a direct GptNeoxModel::Greedy run.
#include "server/engine/unmask.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/model_text.h"
#include "tests/server/testing/tiny_lm.h"

namespace garden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(UnmaskPrefixLengthsTest, SixEvenlySpacedOrAllOfThem) {
  EXPECT_THAT(*UnmaskPrefixLengths(2, {}), ElementsAre(1));
  EXPECT_THAT(*UnmaskPrefixLengths(7, {}), ElementsAre(1, 2, 3, 4, 5, 6));
  // 1 + round(i (n - 2) / 5), i = 0..5.
  EXPECT_THAT(*UnmaskPrefixLengths(8, {}), ElementsAre(1, 2, 3, 5, 6, 7));
  EXPECT_THAT(*UnmaskPrefixLengths(20, {}), ElementsAre(1, 5, 8, 12, 15, 19));
}

TEST(UnmaskPrefixLengthsTest, RequestedOnesSortedAndDistinct) {
  const std::vector<uint32_t> requested = {5, 3, 5, 1};
  EXPECT_THAT(*UnmaskPrefixLengths(6, requested), ElementsAre(1, 3, 5));
  const std::vector<uint32_t> too_long = {2, 6};
  auto bad = UnmaskPrefixLengths(6, too_long);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "prefix length 6 is outside [1, 5] for a text of 6 tokens");
  const std::vector<uint32_t> zero = {0};
  EXPECT_EQ(UnmaskPrefixLengths(6, zero).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto single = UnmaskPrefixLengths(1, {});
  EXPECT_EQ(single.status().message(),
            "text has 1 token; unmasking needs at least 2");
}

class UnmaskTest : public ::testing::Test {
 protected:
  testing::TinyLm lm_ = testing::MakeTinyLm();
};

TEST_F(UnmaskTest, AgreesWithADirectGreedyRun) {
  auto ids = EncodeForModel(*lm_.tokenizer, lm_.model->config(),
                            "The cat sat on the log by the mat.", "text");
  ASSERT_TRUE(ids.ok()) << ids.status();
  const int64_t n = static_cast<int64_t>(ids->size());
  ASSERT_GE(n, 8);
  auto ks = UnmaskPrefixLengths(n, {});
  ASSERT_TRUE(ks.ok());
  for (int64_t k : *ks) {
    auto got = Unmask(*lm_.model, *lm_.tokenizer, *ids, k, [] { return false; });
    ASSERT_TRUE(got.ok()) << got.status();
    auto direct =
        lm_.model->Greedy(absl::MakeConstSpan(ids->data(), k), n - k);
    ASSERT_TRUE(direct.ok());
    EXPECT_EQ(got->k, k);
    EXPECT_EQ(got->n, n);
    EXPECT_EQ(got->generated, direct->tokens);
    int agree = 0;
    for (int64_t i = 0; i < n - k; ++i) {
      const bool same = direct->tokens[i] == (*ids)[k + i];
      EXPECT_EQ(got->agree[i], same) << "k " << k << " position " << i;
      agree += same;
    }
    EXPECT_EQ(got->recovered, static_cast<double>(agree) / (n - k));
    EXPECT_EQ(got->prefix_text,
              DecodeIds(*lm_.tokenizer, absl::MakeConstSpan(ids->data(), k)));
    EXPECT_EQ(got->generated_text, DecodeIds(*lm_.tokenizer, direct->tokens));
    ASSERT_EQ(got->generated_pieces.size(), direct->tokens.size());
    for (size_t i = 0; i < direct->tokens.size(); ++i) {
      EXPECT_EQ(got->generated_pieces[i],
                DecodeIds(*lm_.tokenizer, absl::MakeConstSpan(&direct->tokens[i], 1)));
    }
  }
}

TEST_F(UnmaskTest, ATextTheModelWroteItselfIsRecoveredInFull) {
  // The prompt and the model's own greedy continuation: unmasking after the
  // prompt gives the continuation back token for token.
  const std::vector<int64_t> prompt = {5, 80, 120};
  auto continuation = lm_.model->Greedy(prompt, 9);
  ASSERT_TRUE(continuation.ok());
  std::vector<int64_t> text = prompt;
  text.insert(text.end(), continuation->tokens.begin(),
              continuation->tokens.end());
  auto got = Unmask(*lm_.model, *lm_.tokenizer, text, 3, [] { return false; });
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->recovered, 1.0);
  EXPECT_THAT(got->agree, ::testing::Each(true));
  EXPECT_EQ(got->generated, continuation->tokens);
}

TEST_F(UnmaskTest, CancelledBetweenTokens) {
  const std::vector<int64_t> text = {5, 80, 120, 7, 9};
  auto got = Unmask(*lm_.model, *lm_.tokenizer, text, 1, [] { return true; });
  EXPECT_EQ(got.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace garden

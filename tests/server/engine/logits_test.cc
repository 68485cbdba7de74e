// Top-k (ties to the lower id, k beyond the vocabulary), and the mean
// logits and attention matrices against the model's own tensors.
#include "server/engine/logits.h"

#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/testing/tiny_lm.h"

namespace garden {
namespace {

using ::testing::ElementsAre;

std::vector<int64_t> Ids(const std::vector<TokenLogit>& top) {
  std::vector<int64_t> ids;
  for (const auto& t : top) ids.push_back(t.id);
  return ids;
}

TEST(TopKTest, LargestFirstTiesToTheLowerId) {
  const std::vector<float> values = {1.0f, 3.0f, 3.0f, 2.0f, 3.0f, -1.0f};
  EXPECT_THAT(Ids(TopK(values, 2)), ElementsAre(1, 2));
  EXPECT_THAT(Ids(TopK(values, 4)), ElementsAre(1, 2, 4, 3));
  const auto top = TopK(values, 3);
  EXPECT_EQ(top[2].id, 4);
  EXPECT_EQ(top[2].logit, 3.0f);
  EXPECT_TRUE(TopK(values, 0).empty());
}

TEST(TopKTest, KBeyondTheVocabularyGivesEveryId) {
  const std::vector<float> values = {0.5f, -2.0f, 0.5f, 7.0f};
  EXPECT_THAT(Ids(TopK(values, 10)), ElementsAre(3, 0, 2, 1));
  EXPECT_TRUE(TopK({}, 5).empty());
}

class LogitsTest : public ::testing::Test {
 protected:
  testing::TinyLm lm_ = testing::MakeTinyLm();
  const std::vector<int64_t> ids_ = {5, 80, 120, 7, 9, 44};
};

TEST_F(LogitsTest, MeanLogitsAverageTheForwardPassOverPositions) {
  auto mean = MeanLogits(*lm_.model, ids_);
  ASSERT_TRUE(mean.ok()) << mean.status();
  ASSERT_EQ(static_cast<int64_t>(mean->size()), lm_.model->config().vocab_size);
  auto logits = lm_.model->Forward(at::tensor(ids_, at::kLong).view({1, 6}));
  ASSERT_TRUE(logits.ok());
  for (int64_t v : {int64_t{0}, int64_t{17}, lm_.model->config().vocab_size - 1}) {
    double sum = 0;
    for (int64_t t = 0; t < 6; ++t) sum += (*logits)[0][t][v].item<float>();
    EXPECT_NEAR((*mean)[v], sum / 6, 1e-5) << "id " << v;
  }
  // The top-k of the mean, as the Logits RPC lists it.
  const auto top = TopK(*mean, 3);
  for (const auto& t : top) EXPECT_EQ(t.logit, (*mean)[t.id]);
  EXPECT_GE(top[0].logit, top[1].logit);
}

TEST_F(LogitsTest, AttentionMatrixPerHeadOrAveraged) {
  auto probs = lm_.model->AttentionWeights(at::tensor(ids_, at::kLong), 1);
  ASSERT_TRUE(probs.ok());
  auto heads = AttentionMatrix(*lm_.model, ids_, 1, /*average_heads=*/false);
  auto averaged = AttentionMatrix(*lm_.model, ids_, 1, /*average_heads=*/true);
  ASSERT_TRUE(heads.ok() && averaged.ok());
  ASSERT_EQ(heads->size(), 2u * 6 * 6);
  ASSERT_EQ(averaged->size(), 6u * 6);
  for (int64_t q = 0; q < 6; ++q) {
    double row = 0;
    for (int64_t k = 0; k < 6; ++k) {
      const float h0 = (*probs)[0][q][k].item<float>();
      const float h1 = (*probs)[1][q][k].item<float>();
      EXPECT_EQ((*heads)[q * 6 + k], h0);
      EXPECT_EQ((*heads)[36 + q * 6 + k], h1);
      EXPECT_NEAR((*averaged)[q * 6 + k], (h0 + h1) / 2, 1e-7);
      row += (*averaged)[q * 6 + k];
      if (k > q) {
        EXPECT_EQ((*averaged)[q * 6 + k], 0.0f);  // causal
      }
    }
    EXPECT_NEAR(row, 1.0, 1e-6);
  }
}

}  // namespace
}  // namespace garden

// Perplexity of a tiny random model on a small cloze set: the aggregate
// equals a direct ScoreContinuations computation, truncated contexts are
// counted, and encoding errors name the example.
#include "server/engine/perplexity.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/testing/tiny_lm.h"

namespace garden {
namespace {

using ::testing::HasSubstr;

TEST(AggregateScoresTest, MeansPerplexityAccuracyAndTruncation) {
  const std::vector<ContinuationScore> scores = {
      {-1.0, true, false}, {-3.0, false, true}, {-0.5, true, false},
      {-2.5, false, false}};
  const PerplexityResult r = AggregateScores(scores, 17);
  EXPECT_EQ(r.mean_logprob, -1.75);
  EXPECT_EQ(r.perplexity, std::exp(1.75));
  EXPECT_EQ(r.accuracy, 0.5);
  EXPECT_EQ(r.examples, 4u);
  EXPECT_EQ(r.target_tokens, 17u);
  EXPECT_EQ(r.truncated, 1u);
}

std::shared_ptr<const Dataset> Cloze(std::vector<std::string> texts) {
  auto dataset = std::make_shared<Dataset>();
  dataset->name = "tiny";
  dataset->texts = std::move(texts);
  return dataset;
}

TEST(PerplexityEvaluationTest, EqualsADirectScoring) {
  // A 12-position context: the long example is cut on the left.
  const testing::TinyLm lm = testing::MakeTinyLm(/*seed=*/3, /*context=*/12);
  auto dataset = Cloze({"The cat sat on the mat.", "The dog sat on the log.",
                        "A cat and a dog met on the mat by the log at dusk.",
                        "The dog met a cat.", "not scored: beyond the limit"});
  PerplexityEvaluation evaluation(dataset, 4);
  auto got = evaluation.Evaluate(*lm.model, lm.tokenizer, [] { return false; });
  ASSERT_TRUE(got.ok()) << got.status();

  std::vector<ContinuationRequest> requests;
  uint64_t target_tokens = 0;
  for (size_t i = 0; i < 4; ++i) {
    auto r = ClozeRequest(*lm.tokenizer, dataset->texts[i]);
    ASSERT_TRUE(r.ok()) << r.status();
    target_tokens += r->continuation.size();
    requests.push_back(*r);
  }
  auto scores = ScoreContinuations(*lm.model, requests, {}, [] { return false; });
  ASSERT_TRUE(scores.ok()) << scores.status();
  double sum = 0;
  int greedy = 0, truncated = 0;
  for (const auto& s : *scores) {
    sum += s.logprob;
    greedy += s.greedy;
    truncated += s.truncated;
  }
  EXPECT_EQ(got->examples, 4u);
  EXPECT_EQ(got->mean_logprob, sum / 4);
  EXPECT_EQ(got->perplexity, std::exp(-sum / 4));
  EXPECT_EQ(got->accuracy, greedy / 4.0);
  EXPECT_EQ(got->target_tokens, target_tokens);
  EXPECT_EQ(got->truncated, static_cast<uint32_t>(truncated));
  EXPECT_EQ(truncated, 1);  // the long example
  EXPECT_LT(got->mean_logprob, 0);

  // A second checkpoint with the same tokenizer: no re-encoding needed, and
  // the same model gives the same numbers.
  auto again = evaluation.Evaluate(*lm.model, lm.tokenizer, [] { return false; });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->mean_logprob, got->mean_logprob);
}

TEST(PerplexityEvaluationTest, WorkingBytesAreTheLargestBatch) {
  const testing::TinyLm lm = testing::MakeTinyLm(/*seed=*/3, /*context=*/12);
  const GptNeoxConfig& c = lm.model->config();
  // Row lengths are context + continuation - 1, cut to the context (12).
  const std::vector<ContinuationRequest> requests = {
      {{1, 2, 3}, {4, 5}}, {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, {4}}, {{7}, {8}}};
  const auto forward_and_scoring = [&](int64_t rows, int64_t length, int64_t scored) {
    return ForwardWorkingBytes(c, rows * length, scored, length, 0) +
           16 * static_cast<uint64_t>(scored * c.vocab_size);
  };
  // Each row alone (a 1-token budget): the 12-token row is the largest.
  auto one_each = ScoringWorkingBytes(c, requests, {.max_batch_tokens = 1});
  ASSERT_TRUE(one_each.ok()) << one_each.status();
  EXPECT_EQ(*one_each, forward_and_scoring(1, 12, 1));
  // One batch of all three, padded to 12 positions each, 4 scored.
  auto together = ScoringWorkingBytes(c, requests, {.max_batch_tokens = 36});
  ASSERT_TRUE(together.ok());
  EXPECT_EQ(*together, forward_and_scoring(3, 12, 4));
  // Refused as ScoreContinuations refuses it.
  EXPECT_FALSE(ScoringWorkingBytes(c, {{{1}, {}}}, {}).ok());

  auto dataset = Cloze({"The cat sat on the mat.", "The dog met a cat."});
  PerplexityEvaluation evaluation(dataset, 2);
  auto bytes = evaluation.WorkingBytes(*lm.model, lm.tokenizer);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_GT(*bytes, 0u);
}

TEST(PerplexityEvaluationTest, AnExampleWithoutTargetTokensIsNamed) {
  const testing::TinyLm lm = testing::MakeTinyLm();
  PerplexityEvaluation evaluation(Cloze({"The cat sat.", ""}), 2);
  auto got = evaluation.Evaluate(*lm.model, lm.tokenizer, [] { return false; });
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(got.status().message(),
              HasSubstr("dataset \"tiny\" example 2: the target \"\" of \"\" "
                        "has no tokens of its own"));
}

TEST(PerplexityEvaluationTest, Cancelled) {
  const testing::TinyLm lm = testing::MakeTinyLm();
  PerplexityEvaluation evaluation(Cloze({"The cat sat."}), 1);
  auto got = evaluation.Evaluate(*lm.model, lm.tokenizer, [] { return true; });
  EXPECT_EQ(got.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace garden

// Generation as pieces of text: each token's text as it becomes final
// (never half a UTF-8 character), the tokens of a direct greedy run, and
// how it stops.
#include "server/engine/generation.h"

#include <algorithm>

#include "common/base/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/model_text.h"
#include "tests/server/testing/tiny_lm.h"

namespace garden {
namespace {

using ::testing::HasSubstr;

GenerationOptions Greedy(int64_t max_new_tokens) {
  GenerationOptions options;
  options.max_new_tokens = max_new_tokens;
  return options;
}

class GenerationTest : public ::testing::Test {
 protected:
  testing::TinyLm lm_ = testing::MakeTinyLm();
};

TEST_F(GenerationTest, TextWaitsForTheRestOfACharacter) {
  // "é" and "☃" are two and three bytes; the tiny vocabulary spells them in
  // single-byte tokens.
  const std::string text = "cat \xC3\xA9t\xC3\xA9 \xE2\x98\x83!";
  const std::vector<int32_t> ids = lm_.tokenizer->Encode(text);
  IncrementalText incremental(*lm_.tokenizer);
  std::string joined;
  std::vector<std::string> pieces;
  for (int32_t id : ids) {
    pieces.push_back(incremental.Add(id));
    EXPECT_TRUE(IsValidUtf8(pieces.back())) << pieces.size();
    joined += pieces.back();
  }
  joined += incremental.Flush();
  EXPECT_EQ(joined, text);
  // The first bytes of each "é" and of the snowman add nothing; the last
  // one adds the whole character.
  EXPECT_THAT(pieces, ::testing::Contains(HasSubstr("\xE2\x98\x83")));
  EXPECT_GE(std::count(pieces.begin(), pieces.end(), ""), 4);
  EXPECT_EQ(incremental.Flush(), "");
}

TEST_F(GenerationTest, EmitsTheTokensOfAGreedyRunWithTheirText) {
  const std::vector<int64_t> prompt = {5, 80, 120};
  auto direct = lm_.model->Greedy(prompt, 12);
  ASSERT_TRUE(direct.ok());
  std::vector<GeneratedPiece> pieces;
  const absl::Status status = Generate(
      *lm_.model, *lm_.tokenizer, prompt, Greedy(12),
      [] { return false; },
      [&](const GeneratedPiece& p) {
        pieces.push_back(p);
        return true;
      });
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(pieces.size(), 12u);
  std::string text;
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(pieces[i].id, direct->tokens[i]);
    EXPECT_EQ(pieces[i].logprob, direct->logprobs[i]);
    text += pieces[i].text;
  }
  EXPECT_EQ(text, DecodeIds(*lm_.tokenizer, direct->tokens));
}

TEST_F(GenerationTest, SamplingFollowsTheSeed) {
  const std::vector<int64_t> prompt = {5, 80};
  const SamplingOptions sampling{.temperature = 0.8, .top_k = 20, .seed = 42};
  auto direct = lm_.model->Sample(prompt, 6, sampling);
  ASSERT_TRUE(direct.ok());
  std::vector<int64_t> ids;
  ASSERT_TRUE(Generate(*lm_.model, *lm_.tokenizer, prompt,
                       GenerationOptions{6, sampling},
                       [] { return false; },
                       [&](const GeneratedPiece& p) {
                         ids.push_back(p.id);
                         return true;
                       })
                  .ok());
  EXPECT_EQ(ids, direct->tokens);
}

TEST_F(GenerationTest, RefusesToOutgrowTheContextAndStopsWhenAsked) {
  const std::vector<int64_t> prompt(60, 5);
  auto emit_all = [](const GeneratedPiece&) { return true; };
  const absl::Status long_one = Generate(*lm_.model, *lm_.tokenizer, prompt,
                                         Greedy(5),
                                         [] { return false; }, emit_all);
  EXPECT_EQ(long_one.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(long_one.message(),
            "prompt (60 tokens) + max_new_tokens (5) exceed the model's context "
            "of 64 tokens (max_position_embeddings)");

  const std::vector<int64_t> short_prompt = {5, 80};
  int emitted = 0;
  const absl::Status stopped = Generate(
      *lm_.model, *lm_.tokenizer, short_prompt, Greedy(8),
      [] { return false; }, [&](const GeneratedPiece&) { return ++emitted < 2; });
  EXPECT_EQ(stopped.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(emitted, 2);
  const absl::Status cancelled =
      Generate(*lm_.model, *lm_.tokenizer, short_prompt, Greedy(8),
               [] { return true; }, emit_all);
  EXPECT_EQ(cancelled.code(), absl::StatusCode::kCancelled);
  // The last token's emit failing: the client went away.
  const absl::Status last = Generate(
      *lm_.model, *lm_.tokenizer, short_prompt, Greedy(1),
      [] { return false; }, [](const GeneratedPiece&) { return false; });
  EXPECT_EQ(last, absl::CancelledError("the client went away"));
}

}  // namespace
}  // namespace garden

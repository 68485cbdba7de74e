// Scoring a model on cloze tasks the way lm-evaluation-harness scores
// lambada_openai, so that Garden's perplexities compare with published ones:
//
//   context = the text up to its last space, target = " " + the last word;
//   (trailing spaces of the context move to the front of the target);
//   context tokens = encode(context), or [<|endoftext|>] when it is empty;
//   target tokens  = encode(context + target) after the first
//                    len(encode(context)) tokens;
//   input = (context + target tokens) without the last, cut on the left to
//           the model's context length;
//   log P(target | context) = sum over the target's tokens of
//                             log softmax(logits)[token];
//   greedy = every target token is the argmax at its position.
//
// Over examples: perplexity = exp(-mean log P), accuracy = mean greedy.
#ifndef GARDEN_COMMON_MODEL_LM_EVAL_H_
#define GARDEN_COMMON_MODEL_LM_EVAL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model/gpt_neox.h"
#include "common/text/tokenizer.h"

namespace garden {

struct ClozeSplit {
  std::string context;
  std::string target;
};

// The split above, spaces moved. A text without a space is all target.
ClozeSplit SplitCloze(std::string_view text);

// One scoring request in tokens; both parts non-empty.
struct ContinuationRequest {
  std::vector<int64_t> context;
  std::vector<int64_t> continuation;
};

// The request for one cloze text. FAILED_PRECONDITION when the target has no
// tokens of its own, or the context is empty and the tokenizer has no
// <|endoftext|> token to stand for it.
absl::StatusOr<ContinuationRequest> ClozeRequest(const Tokenizer& tokenizer,
                                                 std::string_view text);

struct ContinuationScore {
  double logprob = 0;      // log P(continuation | context)
  bool greedy = false;     // every token the argmax
  bool truncated = false;  // the context was cut on the left to fit
};

struct ScoringOptions {
  // Rows are batched (longest first, right-padded: causal attention keeps
  // the padding from reaching real positions) while batch x length stays
  // within this many tokens; a longer row runs by itself. Only the
  // continuation's positions go through the vocabulary projection.
  int64_t max_batch_tokens = 2048;
};

// Scores every request, in the order given. `cancelled` is polled between
// batches (CANCELLED when it returns true). INVALID_ARGUMENT for ids outside
// the vocabulary or a continuation longer than the model's context.
absl::StatusOr<std::vector<ContinuationScore>> ScoreContinuations(
    const GptNeoxModel& model, const std::vector<ContinuationRequest>& requests,
    const ScoringOptions& options, const std::function<bool()>& cancelled);

// The most working memory one of ScoreContinuations' batches allocates (an
// estimate on the large side, as ForwardWorkingBytes), for admission
// (gardend --request-memory-bytes). The same errors as ScoreContinuations
// for a request it would refuse.
absl::StatusOr<uint64_t> ScoringWorkingBytes(
    const GptNeoxConfig& config, const std::vector<ContinuationRequest>& requests,
    const ScoringOptions& options);

}  // namespace garden

#endif  // GARDEN_COMMON_MODEL_LM_EVAL_H_

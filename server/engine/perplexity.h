// Perplexity of checkpoints on a cloze dataset (lambada_openai's task, as
// common/model/lm_eval.h scores it), one checkpoint at a time.
#ifndef GARDEN_SERVER_ENGINE_PERPLEXITY_H_
#define GARDEN_SERVER_ENGINE_PERPLEXITY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/gpt_neox.h"
#include "common/model/lm_eval.h"
#include "common/text/tokenizer.h"
#include "server/store/dataset_registry.h"

namespace garden {

struct PerplexityResult {
  double mean_logprob = 0;  // mean over examples of log P(target | context)
  double perplexity = 0;    // exp(-mean_logprob)
  double accuracy = 0;      // fraction of examples predicted greedily
  uint32_t examples = 0;
  uint64_t target_tokens = 0;  // tokens scored, over all examples
  uint32_t truncated = 0;      // examples whose context was cut to fit
};

// The result over `scores` (at least one), whose targets have
// `target_tokens` tokens in all.
PerplexityResult AggregateScores(absl::Span<const ContinuationScore> scores,
                                 uint64_t target_tokens);

// The first `count` examples of a dataset scored on one checkpoint after
// another. The examples are encoded once per tokenizer: the checkpoints of
// one model normally share one (ModelCache hands out one Tokenizer for
// identical files), so a sweep encodes them once.
class PerplexityEvaluation {
 public:
  // `count` at most the dataset's size.
  PerplexityEvaluation(std::shared_ptr<const Dataset> dataset, size_t count);

  // Errors of ClozeRequest prefixed with `dataset "NAME" example I`, of
  // ScoreContinuations as they are; CANCELLED when `cancelled` turns true.
  absl::StatusOr<PerplexityResult> Evaluate(
      const GptNeoxModel& model, std::shared_ptr<const Tokenizer> tokenizer,
      const std::function<bool()>& cancelled);

  // The working memory Evaluate will allocate at most (ScoringWorkingBytes),
  // with the same errors; encodes the examples as Evaluate would.
  absl::StatusOr<uint64_t> WorkingBytes(const GptNeoxModel& model,
                                        std::shared_ptr<const Tokenizer> tokenizer);

 private:
  // Encodes the examples unless they already are, with this tokenizer.
  absl::Status EncodeWith(std::shared_ptr<const Tokenizer> tokenizer);
  absl::Status Encode(const Tokenizer& tokenizer);

  std::shared_ptr<const Dataset> dataset_;
  size_t count_;
  std::shared_ptr<const Tokenizer> encoded_with_;
  std::vector<ContinuationRequest> requests_;
  uint64_t target_tokens_ = 0;
};

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_PERPLEXITY_H_

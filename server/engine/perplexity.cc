#include "server/engine/perplexity.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace garden {

PerplexityResult AggregateScores(absl::Span<const ContinuationScore> scores,
                                 uint64_t target_tokens) {
  double logprob_sum = 0;
  uint32_t greedy = 0, truncated = 0;
  for (const ContinuationScore& score : scores) {
    logprob_sum += score.logprob;
    greedy += score.greedy;
    truncated += score.truncated;
  }
  const double n = static_cast<double>(scores.size());
  PerplexityResult out;
  out.mean_logprob = logprob_sum / n;
  out.perplexity = std::exp(-logprob_sum / n);
  out.accuracy = greedy / n;
  out.examples = static_cast<uint32_t>(scores.size());
  out.target_tokens = target_tokens;
  out.truncated = truncated;
  return out;
}

PerplexityEvaluation::PerplexityEvaluation(
    std::shared_ptr<const Dataset> dataset, size_t count)
    : dataset_(std::move(dataset)), count_(count) {}

absl::Status PerplexityEvaluation::Encode(const Tokenizer& tokenizer) {
  requests_.clear();
  target_tokens_ = 0;
  for (size_t i = 0; i < count_; ++i) {
    auto request = ClozeRequest(tokenizer, dataset_->texts[i]);
    RETURN_IF_ERROR(Annotate(
        request.status(),
        absl::StrCat("dataset \"", dataset_->name, "\" example ", i + 1)));
    target_tokens_ += request->continuation.size();
    requests_.push_back(*std::move(request));
  }
  return absl::OkStatus();
}

absl::Status PerplexityEvaluation::EncodeWith(std::shared_ptr<const Tokenizer> tokenizer) {
  if (tokenizer == encoded_with_) return absl::OkStatus();
  encoded_with_ = nullptr;  // until every example is encoded
  RETURN_IF_ERROR(Encode(*tokenizer));
  encoded_with_ = std::move(tokenizer);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> PerplexityEvaluation::WorkingBytes(
    const GptNeoxModel& model, std::shared_ptr<const Tokenizer> tokenizer) {
  RETURN_IF_ERROR(EncodeWith(std::move(tokenizer)));
  return ScoringWorkingBytes(model.config(), requests_, {});
}

absl::StatusOr<PerplexityResult> PerplexityEvaluation::Evaluate(
    const GptNeoxModel& model, std::shared_ptr<const Tokenizer> tokenizer,
    const std::function<bool()>& cancelled) {
  RETURN_IF_ERROR(EncodeWith(std::move(tokenizer)));
  ASSIGN_OR_RETURN(const auto scores,
                   ScoreContinuations(model, requests_, {}, cancelled));
  return AggregateScores(scores, target_tokens_);
}

}  // namespace garden

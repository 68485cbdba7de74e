// garden-train's evaluation (common/train/train_run.h): the held-out samples
// scored at each checkpoint, their loss, and the unigram baseline a model
// must beat. Internal to garden_train.
#ifndef GARDEN_COMMON_TRAIN_TRAIN_EVAL_H_
#define GARDEN_COMMON_TRAIN_TRAIN_EVAL_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/train/trainer.h"

namespace garden::train_internal {

struct HeldoutSet {
  std::vector<int32_t> tokens;  // `samples` samples of seq_len + 1, in a row
  int64_t samples = 0;
};

// Up to `max_samples` samples of seq_len + 1 tokens from the held-out
// stream, cut as TokenBatcher cuts training samples (consecutive ones share
// a token); none if the stream is shorter than one.
HeldoutSet HeldoutSamples(const std::vector<int32_t>& heldout, int64_t seq_len,
                          int64_t max_samples);

// Mean -log p of the held-out targets under the training stream's unigram
// distribution (add-one smoothing over the tokenizer's ids): the loss a
// model must beat to have learnt anything about context. `width` is a
// sample's length; NaN without samples.
double UnigramLoss(const std::vector<int32_t>& train, int32_t vocab,
                   const std::vector<int32_t>& eval, int64_t width);

// The trainer's mean loss over the samples (NaN without any), in chunks
// of 8 samples.
absl::StatusOr<double> HeldoutLoss(const GptNeoxTrainer& trainer,
                                   const HeldoutSet& heldout, int64_t seq_len);

}  // namespace garden::train_internal

#endif  // GARDEN_COMMON_TRAIN_TRAIN_EVAL_H_

#include "common/train/train_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/types/span.h"
#include "common/base/status.h"

namespace garden::train_internal {

HeldoutSet HeldoutSamples(const std::vector<int32_t>& heldout, int64_t seq_len,
                          int64_t max_samples) {
  HeldoutSet set;
  const int64_t width = seq_len + 1;
  if (static_cast<int64_t>(heldout.size()) < width) return set;
  set.samples = std::min<int64_t>(
      max_samples, (static_cast<int64_t>(heldout.size()) - 1) / seq_len);
  for (int64_t i = 0; i < set.samples; ++i) {
    set.tokens.insert(set.tokens.end(), heldout.begin() + i * seq_len,
                      heldout.begin() + i * seq_len + width);
  }
  return set;
}

double UnigramLoss(const std::vector<int32_t>& train, int32_t vocab,
                   const std::vector<int32_t>& eval, int64_t width) {
  std::vector<double> counts(vocab, 1.0);
  for (int32_t id : train) counts[id] += 1;
  const double total = static_cast<double>(train.size()) + vocab;
  double sum = 0;
  int64_t n = 0;
  for (size_t i = 0; i < eval.size(); ++i) {
    if (i % width == 0) continue;  // inputs only, never a target
    sum -= std::log(counts[eval[i]] / total);
    ++n;
  }
  return n > 0 ? sum / n : std::numeric_limits<double>::quiet_NaN();
}

absl::StatusOr<double> HeldoutLoss(const GptNeoxTrainer& trainer,
                                   const HeldoutSet& heldout, int64_t seq_len) {
  if (heldout.samples == 0) return std::numeric_limits<double>::quiet_NaN();
  const int64_t width = seq_len + 1;
  constexpr int64_t kChunk = 8;
  double sum = 0;
  for (int64_t first = 0; first < heldout.samples; first += kChunk) {
    const int64_t n = std::min(kChunk, heldout.samples - first);
    ASSIGN_OR_RETURN(const double loss,
                     trainer.Loss(absl::MakeConstSpan(heldout.tokens)
                                      .subspan(first * width, n * width),
                                  n));
    sum += loss * static_cast<double>(n);
  }
  return sum / static_cast<double>(heldout.samples);
}

}  // namespace garden::train_internal

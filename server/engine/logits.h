// What a model predicts over a whole text: its logits averaged over the
// text's positions, and the tokens that score highest.
#ifndef GARDEN_SERVER_ENGINE_LOGITS_H_
#define GARDEN_SERVER_ENGINE_LOGITS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/gpt_neox.h"

namespace garden {

// Tokens a Logits request lists when it does not say.
inline constexpr int64_t kDefaultLogitsTopK = 10;

struct TokenLogit {
  int64_t id = 0;
  float logit = 0;
};

// The min(k, values.size()) largest values with their indices, largest
// first; equal values in ascending index order.
std::vector<TokenLogit> TopK(absl::Span<const float> values, int64_t k);

// The model's logits over `ids` (one sequence), averaged over positions:
// one float per vocabulary entry. Errors as GptNeoxModel::Forward.
absl::StatusOr<std::vector<float>> MeanLogits(const GptNeoxModel& model,
                                              absl::Span<const int64_t> ids);

// Attention probabilities of `layer` over `ids`, row-major [heads, seq,
// seq] floats (row i: query i over keys 0..i), or [1, seq, seq] averaged
// over the heads. Errors as GptNeoxModel::AttentionWeights.
absl::StatusOr<std::vector<float>> AttentionMatrix(
    const GptNeoxModel& model, absl::Span<const int64_t> ids, int64_t layer,
    bool average_heads);

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_LOGITS_H_

#include "server/engine/logits.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "common/base/status.h"

namespace garden {
namespace {

std::vector<float> ToVector(const at::Tensor& floats) {
  const float* data = floats.data_ptr<float>();
  return std::vector<float>(data, data + floats.numel());
}

at::Tensor Ids(absl::Span<const int64_t> ids) {
  return at::tensor(at::ArrayRef<int64_t>(ids.data(), ids.size()), at::kLong);
}

}  // namespace

std::vector<TokenLogit> TopK(absl::Span<const float> values, int64_t k) {
  const int64_t n = static_cast<int64_t>(values.size());
  k = std::clamp<int64_t>(k, 0, n);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(
      order.begin(), order.begin() + k, order.end(),
      [values](int64_t a, int64_t b) {
        return values[a] > values[b] || (values[a] == values[b] && a < b);
      });
  std::vector<TokenLogit> top;
  for (int64_t i = 0; i < k; ++i) top.push_back({order[i], values[order[i]]});
  return top;
}

absl::StatusOr<std::vector<float>> MeanLogits(const GptNeoxModel& model,
                                              absl::Span<const int64_t> ids) {
  ASSIGN_OR_RETURN(const at::Tensor logits, model.Forward(Ids(ids).unsqueeze(0)));
  c10::InferenceMode guard;
  return ToVector(logits.mean(at::IntArrayRef{0, 1})
                      .to(at::kCPU, at::kFloat)
                      .contiguous());
}

absl::StatusOr<std::vector<float>> AttentionMatrix(
    const GptNeoxModel& model, absl::Span<const int64_t> ids, int64_t layer,
    bool average_heads) {
  ASSIGN_OR_RETURN(const at::Tensor probs,
                   model.AttentionWeights(Ids(ids), layer));
  c10::InferenceMode guard;
  const at::Tensor out = average_heads ? probs.mean(0, /*keepdim=*/true) : probs;
  return ToVector(out.to(at::kFloat).contiguous());
}

}  // namespace garden

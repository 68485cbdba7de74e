// Magnitude pruning of a loaded model, for the sparsification experiment
// (`garden prune`, StreamPrune): the smallest-magnitude entries of chosen
// tensors set to zero in an in-memory copy, which is then scored like any
// checkpoint (perplexity.h). Nothing is written anywhere.
//
// Per tensor of n entries and a fraction f in [0, 1): k = floor(f * n),
// computed in double arithmetic, entries are zeroed: the k smallest by |w|
// in the model's compute dtype. Ties at the threshold are broken by flat
// (row-major) index, lowest first, so that exactly k entries are chosen,
// as a stable ascending sort of |w| would choose them; NaN counts as larger
// than every number. Entries that were already zero are among the smallest
// and count towards k. The fraction 0 is the model as it is (no copy).
#ifndef GARDEN_SERVER_ENGINE_PRUNE_H_
#define GARDEN_SERVER_ENGINE_PRUNE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model/gpt_neox.h"

namespace garden {

// How many fractions one request may ask for.
inline constexpr size_t kMaxPruneFractions = 64;

// INVALID_ARGUMENT naming the fraction unless it is in [0, 1) (NaN is not).
absl::Status ValidatePruneFraction(double fraction);

// INVALID_ARGUMENT unless `fractions` is 1..kMaxPruneFractions valid
// fractions without repeats.
absl::Status ValidatePruneFractions(const std::vector<double>& fractions);

// floor(fraction * numel), fraction in [0, 1).
uint64_t PrunedCount(double fraction, uint64_t numel);

// A parameter a prune touches.
struct PruneTensor {
  std::string name;  // "gpt_neox.layers.0.attention.dense.weight"
  uint64_t numel = 0;
};

// The parameters of `config`'s model whose names `regex` (RE2 syntax)
// matches anywhere, in GptNeoxTensorSlots order; an empty regex: every 2-D
// weight (names ending ".weight" with 2 dimensions). INVALID_ARGUMENT for a
// regex RE2 cannot parse; NOT_FOUND naming the regex and up to 3 parameter
// names closest to it when it matches none.
absl::StatusOr<std::vector<PruneTensor>> MatchPruneTensors(
    const GptNeoxConfig& config, const std::string& regex);

// INVALID_ARGUMENT unless RE2 parses `regex` (empty is fine).
absl::Status ValidatePruneRegex(const std::string& regex);

// The memory PruneModel allocates at most, on the large side: a float32
// copy of every tensor it prunes, and the selection's scratch for the
// largest one (its |w| and int64 indices, twice). 0 for the fraction 0.
uint64_t PruneWorkingBytes(const std::vector<PruneTensor>& tensors,
                           double fraction);

struct PrunedTensorCount {
  std::string name;
  uint64_t numel = 0;
  uint64_t zeroed = 0;  // PrunedCount(fraction, numel)
};

struct PrunedModel {
  // The given model itself for the fraction 0, else the pruned copy (which
  // shares every tensor it did not prune with the given model).
  std::shared_ptr<const GptNeoxModel> model;
  std::vector<PrunedTensorCount> tensors;  // as `tensors` was given
  uint64_t zeroed = 0;                     // over all of them
  uint64_t numel = 0;
};

// `model` with the PrunedCount(fraction, numel) smallest-magnitude entries
// of each of `tensors` (from MatchPruneTensors on its config) set to zero,
// as the file comment says. INVALID_ARGUMENT for a bad fraction;
// FAILED_PRECONDITION for a tensor the model lacks or whose size differs;
// INTERNAL for what libtorch throws.
absl::StatusOr<PrunedModel> PruneModel(std::shared_ptr<const GptNeoxModel> model,
                                       const std::vector<PruneTensor>& tensors,
                                       double fraction);

// The flat indices (ascending) of the k smallest |values| of a 1-D tensor
// with ties broken by index, as PruneModel chooses them; for tests.
at::Tensor SmallestMagnitudeIndices(const at::Tensor& values, int64_t k);

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_PRUNE_H_

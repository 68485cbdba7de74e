// Causal unmasking: how much of a text a model recovers from its first k
// tokens. The model continues the prefix greedily to the text's length and
// each new token is compared with the text's own token at that position.
#ifndef GARDEN_SERVER_ENGINE_UNMASK_H_
#define GARDEN_SERVER_ENGINE_UNMASK_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/gpt_neox.h"
#include "common/text/tokenizer.h"

namespace garden {

// The prefix lengths to unmask a text of n tokens at, ascending and
// distinct: the requested ones, or else six evenly spaced in [1, n - 1]
// (all of them when there are fewer). INVALID_ARGUMENT when n < 2 or a
// requested length lies outside [1, n - 1].
absl::StatusOr<std::vector<int64_t>> UnmaskPrefixLengths(
    int64_t n, absl::Span<const uint32_t> requested);

struct Unmasking {
  int64_t k = 0;                   // prefix length
  int64_t n = 0;                   // the text's tokens
  std::vector<int64_t> generated;  // the n - k greedy tokens after the prefix
  std::vector<bool> agree;         // generated[i] == ids[k + i]
  double recovered = 0;            // the fraction that agrees
  std::string prefix_text;         // the first k tokens, decoded
  std::string generated_text;
  std::vector<std::string> generated_pieces;  // each generated token decoded alone
};

// Unmasks `ids` (the text's tokens, at least 2) after its first k, 1 <= k <
// ids.size(). `cancelled` is polled after every token (CANCELLED).
absl::StatusOr<Unmasking> Unmask(const GptNeoxModel& model,
                                 const Tokenizer& tokenizer,
                                 absl::Span<const int64_t> ids, int64_t k,
                                 const std::function<bool()>& cancelled);

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_UNMASK_H_

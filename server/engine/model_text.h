// Text into a model's tokens and tokens back into text, for the engines that
// run a model over a request's text.
#ifndef GARDEN_SERVER_ENGINE_MODEL_TEXT_H_
#define GARDEN_SERVER_ENGINE_MODEL_TEXT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/gpt_neox.h"
#include "common/text/tokenizer.h"

namespace garden {

// The tokens of `text` for a model with `config`. INVALID_ARGUMENT when the
// text has no tokens or more than the model's context
// (max_position_embeddings); FAILED_PRECONDITION for a token id beyond the
// model's vocabulary. `what` names the text in messages ("prompt", "text").
absl::StatusOr<std::vector<int64_t>> EncodeForModel(
    const Tokenizer& tokenizer, const GptNeoxConfig& config,
    std::string_view text, std::string_view what);

// The text of token ids (the tokenizer's Decode, ids as the model gives them).
std::string DecodeIds(const Tokenizer& tokenizer,
                      absl::Span<const int64_t> ids);

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_MODEL_TEXT_H_

#include "server/engine/model_text.h"

#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"

namespace garden {

absl::StatusOr<std::vector<int64_t>> EncodeForModel(
    const Tokenizer& tokenizer, const GptNeoxConfig& config,
    std::string_view text, std::string_view what) {
  const std::vector<int32_t> narrow = tokenizer.Encode(text);
  std::vector<int64_t> ids(narrow.begin(), narrow.end());
  if (ids.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(what), " is empty: it has no tokens"));
  }
  if (static_cast<int64_t>(ids.size()) > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        ToAbsl(what), " is ", ids.size(), " tokens; the model's context is ",
        config.max_position_embeddings, " (max_position_embeddings)"));
  }
  for (int64_t id : ids) {
    if (id >= config.vocab_size) {
      return absl::FailedPreconditionError(
          absl::StrCat("the tokenizer gives id ", id,
                       ", beyond the model's vocab_size ", config.vocab_size));
    }
  }
  return ids;
}

std::string DecodeIds(const Tokenizer& tokenizer,
                      absl::Span<const int64_t> ids) {
  const std::vector<int32_t> narrow(ids.begin(), ids.end());
  return tokenizer.Decode(narrow);
}

}  // namespace garden

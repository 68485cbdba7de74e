// Generation as a stream of tokens with their text: each token is handed on
// with the text it completes, so that a client printing the pieces in order
// prints the decoded text and never half a UTF-8 character.
#ifndef GARDEN_SERVER_ENGINE_GENERATION_H_
#define GARDEN_SERVER_ENGINE_GENERATION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/model/gpt_neox.h"
#include "common/text/tokenizer.h"

namespace garden {

// Text of new tokens as it becomes final: a token that ends inside a UTF-8
// character adds nothing until the character is complete.
class IncrementalText {
 public:
  // The tokenizer must outlive this object.
  explicit IncrementalText(const Tokenizer& tokenizer)
      : tokenizer_(tokenizer) {}
  // The text `id` completes: "" while the decoded text ends in U+FFFD.
  std::string Add(int64_t id);
  // Whatever decoded text is still unsent, incomplete characters included.
  std::string Flush();

 private:
  // The part of the decoded `text` not returned before.
  std::string Take(const std::string& text);

  const Tokenizer& tokenizer_;
  std::vector<int32_t> ids_;
  size_t emitted_ = 0;
};

struct GenerationOptions {
  int64_t max_new_tokens = 1;
  std::optional<SamplingOptions> sampling;  // absent: greedy
};

// One new token and the text it completes.
struct GeneratedPiece {
  int64_t id = 0;
  float logprob = 0;
  std::string text;
};

// Generates up to options.max_new_tokens after `prompt` and hands each new
// token to `emit` once the next one is known (its text may need it), the
// last one with all the text left. INVALID_ARGUMENT when the prompt and the
// new tokens exceed the model's context. CANCELLED when `cancelled` turns
// true or `emit` returns false during the generation (the model's status),
// or "the client went away" when emitting the last token fails.
absl::Status Generate(const GptNeoxModel& model, const Tokenizer& tokenizer,
                      absl::Span<const int64_t> prompt,
                      const GenerationOptions& options,
                      const std::function<bool()>& cancelled,
                      const std::function<bool(const GeneratedPiece&)>& emit);

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_GENERATION_H_

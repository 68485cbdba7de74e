#include "server/engine/generation.h"

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/base/utf8.h"

namespace garden {

std::string IncrementalText::Add(int64_t id) {
  ids_.push_back(static_cast<int32_t>(id));
  const std::string text = tokenizer_.Decode(ids_);
  if (EndsWithReplacement(text)) return "";
  return Take(text);
}

std::string IncrementalText::Flush() { return Take(tokenizer_.Decode(ids_)); }

std::string IncrementalText::Take(const std::string& text) {
  std::string piece = text.size() > emitted_ ? text.substr(emitted_) : "";
  emitted_ = text.size();
  return piece;
}

absl::Status Generate(const GptNeoxModel& model, const Tokenizer& tokenizer,
                      absl::Span<const int64_t> prompt,
                      const GenerationOptions& options,
                      const std::function<bool()>& cancelled,
                      const std::function<bool(const GeneratedPiece&)>& emit) {
  const int64_t context = model.config().max_position_embeddings;
  if (static_cast<int64_t>(prompt.size()) + options.max_new_tokens > context) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", prompt.size(), " tokens) + max_new_tokens (",
        options.max_new_tokens, ") exceed the model's context of ", context,
        " tokens (max_position_embeddings)"));
  }
  IncrementalText text(tokenizer);
  // The newest token waits for the next: its text may need the rest of its
  // character.
  std::optional<GeneratedPiece> held;
  auto on_token = [&](int64_t token, float logprob) {
    if (cancelled()) return false;
    if (held.has_value()) {
      held->text = text.Add(held->id);
      if (!emit(*held)) return false;
    }
    held = GeneratedPiece{token, logprob, ""};
    return true;
  };
  const absl::Status generated =
      options.sampling.has_value()
          ? model.Sample(prompt, options.max_new_tokens, *options.sampling,
                         on_token)
                .status()
          : model.Greedy(prompt, options.max_new_tokens, on_token).status();
  RETURN_IF_ERROR(generated);
  if (held.has_value()) {
    held->text = text.Add(held->id);
    held->text += text.Flush();
    if (!emit(*held)) return absl::CancelledError("the client went away");
  }
  return absl::OkStatus();
}

}  // namespace garden

// What the model RPCs return: tokens (Tokenize), generated text (Generate),
// causal unmasking frames (CausalUnmask), mean logits (Logits) and attention
// matrices (Attention). JSON is written on one line, with bytes that are not
// UTF-8 (a token piece can split a character) replaced.
#ifndef GARDEN_CLIENT_OUTPUT_LANGUAGE_MODEL_H_
#define GARDEN_CLIENT_OUTPUT_LANGUAGE_MODEL_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "client/output/format.h"
#include "client/output/records.h"
#include "garden/v1/garden.pb.h"
#include "nlohmann/json.hpp"

namespace garden::client {

// json: {"ids": [...], "pieces": [...]}. table: "ID  PIECE" per token.
void RenderTokens(const garden::v1::TokenizeResponse& response, Format format,
                  std::ostream& out);

// text (and table): each token's text as it arrives, then a newline once
// the stream ends. json: {text, ids, prompt_ids, logprobs} at the end.
class GenerateRenderer {
 public:
  GenerateRenderer(Format format, std::ostream& out)
      : format_(format), out_(out) {}

  void Token(const garden::v1::GenerateResponse& message);
  // After the stream, whether or not it `completed`: text ends its line
  // (if it printed any token); json is written only when completed.
  void Finish(bool completed);

 private:
  Format format_;
  std::ostream& out_;
  std::string text_;
  std::vector<int32_t> ids_, prompt_ids_;
  std::vector<float> logprobs_;
};

// Frame keys: step, k, n, prefix, prefix_ids, generated, generated_ids,
// agree, recovered.
//   jsonl: one frame a line.
//   json:  {"frames": [...], "n", "original_ids"} (the last two from the
//          frame that carries the sentence).
//   table: STEP K N RECOVERED "prefix | completion" on one line.
// Finish once the stream completed.
class UnmaskRenderer {
 public:
  UnmaskRenderer(Format format, std::ostream& out)
      : format_(format), out_(out), records_(format, out) {}

  void Frame(const garden::v1::UnmaskFrame& frame);
  void Finish();

 private:
  Format format_;
  std::ostream& out_;
  RecordPrinter records_;
  nlohmann::json sentence_ = nlohmann::json::object();  // n, original_ids
};

// json: {"tokens", "top": [{id, piece, logit}]} plus "mean_logits" when
// `include_all` (--all). table: the position count, then ID LOGIT PIECE.
void RenderLogits(const garden::v1::LogitsResponse& response, bool include_all,
                  Format format, std::ostream& out);

// json: {heads, tokens, pieces, "weights": [head][query][key]}. table: per
// head ("mean of the heads" when `averaged`) one row per query token.
void RenderAttention(const garden::v1::AttentionResponse& response,
                     bool averaged, Format format, std::ostream& out);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_LANGUAGE_MODEL_H_

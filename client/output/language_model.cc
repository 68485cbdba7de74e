#include "client/output/language_model.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/output/json.h"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;

template <typename T>
std::vector<T> Vector(const google::protobuf::RepeatedField<T>& field) {
  return std::vector<T>(field.begin(), field.end());
}

std::vector<std::string> Vector(
    const google::protobuf::RepeatedPtrField<std::string>& field) {
  return std::vector<std::string>(field.begin(), field.end());
}

}  // namespace

void RenderTokens(const pb::TokenizeResponse& response, Format format,
                  std::ostream& out) {
  if (format == Format::kJson) {
    WriteJson({{"ids", Vector(response.ids())},
               {"pieces", Vector(response.pieces())}},
              out);
    return;
  }
  for (int i = 0; i < response.ids_size(); ++i) {
    out << absl::StrFormat("%8d  %s\n", response.ids(i), response.pieces(i));
  }
}

void GenerateRenderer::Token(const pb::GenerateResponse& message) {
  prompt_ids_.insert(prompt_ids_.end(), message.prompt_ids().begin(),
                     message.prompt_ids().end());
  const pb::GeneratedToken& token = message.token();
  ids_.push_back(token.id());
  logprobs_.push_back(token.logprob());
  text_ += token.text();
  if (format_ != Format::kJson) out_ << token.text() << std::flush;
}

void GenerateRenderer::Finish(bool completed) {
  if (format_ != Format::kJson) {
    if (!ids_.empty()) out_ << "\n" << std::flush;
    return;
  }
  if (!completed) return;
  WriteJson({{"text", text_},
             {"ids", ids_},
             {"prompt_ids", prompt_ids_},
             {"logprobs", logprobs_}},
            out_);
}

void UnmaskRenderer::Frame(const pb::UnmaskFrame& frame) {
  nlohmann::json j = {{"step", frame.step()},
                      {"k", frame.k()},
                      {"n", frame.n()},
                      {"prefix", frame.prefix_text()},
                      {"prefix_ids", Vector(frame.prefix_ids())},
                      {"generated", frame.generated_text()},
                      {"generated_ids", Vector(frame.generated_ids())},
                      {"generated_pieces", Vector(frame.generated_pieces())},
                      {"agree", Vector(frame.agree())},
                      {"recovered", JsonNumber(frame.recovered())}};
  if (frame.original_ids_size() > 0) {
    sentence_["n"] = frame.n();
    sentence_["original_ids"] = Vector(frame.original_ids());
  }
  records_.Print(std::move(j), [&] {
    // One line per frame, whatever the texts hold.
    std::string line = frame.prefix_text() + " | " + frame.generated_text();
    std::replace_if(
        line.begin(), line.end(),
        [](char c) { return c == '\n' || c == '\t' || c == '\r'; }, ' ');
    return RecordText{
        absl::StrFormat("%8s %4s %4s %9s  %s\n", "STEP", "K", "N",
                        "RECOVERED", "PREFIX | COMPLETION"),
        absl::StrFormat("%8d %4d %4d %9.3f  %s\n", frame.step(), frame.k(),
                        frame.n(), frame.recovered(), line)};
  });
}

void UnmaskRenderer::Finish() {
  if (format_ != Format::kJson) return;
  nlohmann::json all = sentence_;
  all["frames"] = records_.TakeKept();
  WriteJson(all, out_);
}

void RenderLogits(const pb::LogitsResponse& response, bool include_all,
                  Format format, std::ostream& out) {
  if (format == Format::kJson) {
    nlohmann::json top = nlohmann::json::array();
    for (const auto& t : response.top()) {
      top.push_back({{"id", t.id()},
                     {"piece", t.piece()},
                     {"logit", JsonNumber(t.logit())}});
    }
    nlohmann::json j = {{"tokens", response.tokens()}, {"top", top}};
    if (include_all) j["mean_logits"] = Vector(response.mean_logits());
    WriteJson(j, out);
    return;
  }
  out << absl::StrFormat("mean over %d positions\n%8s %12s  %s\n",
                         response.tokens(), "ID", "LOGIT", "PIECE");
  for (const auto& t : response.top()) {
    out << absl::StrFormat("%8d %12.5f  %s\n", t.id(), t.logit(), t.piece());
  }
}

void RenderAttention(const pb::AttentionResponse& response, bool averaged,
                     Format format, std::ostream& out) {
  const int heads = response.heads(), n = response.tokens();
  auto weight = [&](int h, int i, int j) {
    return response.weights((int64_t{h} * n + i) * n + j);
  };
  if (format == Format::kJson) {
    nlohmann::json weights = nlohmann::json::array();
    for (int h = 0; h < heads; ++h) {
      nlohmann::json rows = nlohmann::json::array();
      for (int i = 0; i < n; ++i) {
        std::vector<float> row(n);
        for (int j = 0; j < n; ++j) row[j] = weight(h, i, j);
        rows.push_back(std::move(row));
      }
      weights.push_back(std::move(rows));
    }
    WriteJson({{"heads", heads},
               {"tokens", n},
               {"pieces", Vector(response.pieces())},
               {"weights", weights}},
              out);
    return;
  }
  for (int h = 0; h < heads; ++h) {
    out << (averaged ? std::string("mean of the heads")
                     : absl::StrCat("head ", h))
        << "\n";
    for (int i = 0; i < n; ++i) {
      out << absl::StrFormat("%14.14s", response.pieces(i));
      for (int j = 0; j < n; ++j) out << absl::StrFormat(" %5.3f", weight(h, i, j));
      out << "\n";
    }
  }
}

}  // namespace garden::client

// The model RPCs of GardenService: tokenization, generation, causal
// unmasking, mean logits and attention. The only service file that needs
// libtorch, so the others compile fast.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/model/gpt_neox.h"
#include "common/model/lm_eval.h"
#include "common/text/tokenizer.h"
#include "server/service/garden_service.h"
#include "server/store/dataset_registry.h"
#include "server/store/model_cache.h"

namespace garden {
namespace {

namespace pb = ::garden::v1;

// The replacement character a decoder writes for a partial UTF-8 sequence.
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// A checkpoint with its model and tokenizer, ready to run.
struct Loaded {
  CheckpointLocation where;
  std::shared_ptr<const GptNeoxModel> model;
  std::shared_ptr<const Tokenizer> tokenizer;
};

absl::Status CheckText(absl::string_view what, const std::string& text,
                       uint64_t limit) {
  if (text.size() > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is ", text.size(), " bytes; the limit is ", limit));
  }
  return absl::OkStatus();
}

std::vector<int64_t> Widen(const std::vector<int32_t>& ids) {
  return std::vector<int64_t>(ids.begin(), ids.end());
}

std::string DecodeIds(const Tokenizer& tokenizer,
                      absl::Span<const int64_t> ids) {
  std::vector<int32_t> narrow(ids.begin(), ids.end());
  return tokenizer.Decode(narrow);
}

// Text of new tokens as it becomes final: a token that ends inside a UTF-8
// character adds nothing until the character is complete.
class IncrementalText {
 public:
  explicit IncrementalText(const Tokenizer& tokenizer)
      : tokenizer_(tokenizer) {}
  std::string Add(int64_t id) {
    ids_.push_back(static_cast<int32_t>(id));
    const std::string text = tokenizer_.Decode(ids_);
    if (text.size() >= kReplacement.size() &&
        text.compare(text.size() - kReplacement.size(), kReplacement.size(),
                     kReplacement) == 0) {
      return "";
    }
    std::string piece = text.size() > emitted_ ? text.substr(emitted_) : "";
    emitted_ = text.size();
    return piece;
  }
  std::string Flush() {
    const std::string text = tokenizer_.Decode(ids_);
    std::string piece = text.size() > emitted_ ? text.substr(emitted_) : "";
    emitted_ = text.size();
    return piece;
  }

 private:
  const Tokenizer& tokenizer_;
  std::vector<int32_t> ids_;
  size_t emitted_ = 0;
};

absl::StatusOr<Loaded> LoadAt(CheckpointStore& store, ModelCache& models,
                              const ModelKey& key, int64_t step,
                              bool need_model) {
  if (step < 0 || step > kMaxStep) {
    return absl::InvalidArgumentError(
        absl::StrCat("step ", step, " is outside [0, ", kMaxStep, "]"));
  }
  auto where = store.Locate(key, step);
  if (!where.ok()) return where.status();
  Loaded loaded{*where, nullptr, nullptr};
  auto tokenizer = models.TokenizerFor(*where);
  if (!tokenizer.ok()) return tokenizer.status();
  loaded.tokenizer = *tokenizer;
  if (need_model) {
    auto model = models.Model(*where);
    if (!model.ok()) return model.status();
    loaded.model = *model;
  }
  return loaded;
}

absl::StatusOr<Loaded> LoadCheckpoint(CheckpointStore& store,
                                      ModelCache& models,
                                      const pb::CheckpointRef& ref,
                                      bool need_model) {
  auto key = KeyOf(ref.model());
  if (!key.ok()) return key.status();
  return LoadAt(store, models, *key, ref.step(), need_model);
}

// Tokens of a text for a model, checked against its context length.
absl::StatusOr<std::vector<int64_t>> Encode(const Loaded& loaded,
                                            const std::string& text,
                                            absl::string_view what) {
  std::vector<int64_t> ids = Widen(loaded.tokenizer->Encode(text));
  if (ids.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is empty: it has no tokens"));
  }
  const auto& config = loaded.model->config();
  if (static_cast<int64_t>(ids.size()) > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is ", ids.size(), " tokens; the model's context is ",
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

// Six evenly spaced prefix lengths in [1, n - 1] (all of them when fewer).
std::vector<int64_t> DefaultPrefixLengths(int64_t n) {
  std::vector<int64_t> ks;
  if (n - 1 <= 6) {
    for (int64_t k = 1; k < n; ++k) ks.push_back(k);
    return ks;
  }
  for (int i = 0; i < 6; ++i) {
    ks.push_back(1 + static_cast<int64_t>(std::llround(i * (n - 2) / 5.0)));
  }
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  return ks;
}

// A checkpoint's model and tokenizer with a text's tokens, for the RPCs
// that run the model over one text.
absl::StatusOr<std::pair<Loaded, std::vector<int64_t>>> PrepareText(
    CheckpointStore& store, ModelCache& models, const pb::CheckpointRef& ref,
    const std::string& text, uint64_t max_text_bytes) {
  if (auto s = CheckText("text", text, max_text_bytes); !s.ok()) return s;
  auto loaded = LoadCheckpoint(store, models, ref, /*need_model=*/true);
  if (!loaded.ok()) return loaded.status();
  auto ids = Encode(*loaded, text, "text");
  if (!ids.ok()) {
    return absl::Status(
        ids.status().code(),
        absl::StrCat(loaded->where.model.Name(), " step ", loaded->where.step,
                     ": ", ids.status().message()));
  }
  return std::make_pair(*std::move(loaded), *std::move(ids));
}

// "pythia-70m deduped step 1000" as the request spelled it, for logs of
// requests that failed before the checkpoint was found.
std::string RefName(const pb::CheckpointRef& ref) {
  return absl::StrCat(ref.model().suite(), "-", ref.model().size(), " ",
                      ref.model().variant(), " step ", ref.step());
}

std::string What(const Loaded& loaded) {
  return absl::StrCat(loaded.where.model.Name(), " step ", loaded.where.step);
}

}  // namespace

grpc::Status GardenService::Tokenize(grpc::ServerContext* context,
                                     const pb::TokenizeRequest* request,
                                     pb::TokenizeResponse* response) {
  RpcLog log("Tokenize", context);
  if (auto s = CheckText("text", request->text(), options_.max_text_bytes);
      !s.ok()) {
    return log.Done(s, "");
  }
  auto loaded = LoadCheckpoint(store_, models_, request->checkpoint(),
                               /*need_model=*/false);
  if (!loaded.ok())
    return log.Done(loaded.status(), RefName(request->checkpoint()));
  for (int32_t id : loaded->tokenizer->Encode(request->text())) {
    response->add_ids(id);
    response->add_pieces(loaded->tokenizer->IdToPiece(id));
  }
  return log.Done(absl::OkStatus(), absl::StrCat(What(*loaded), ", ",
                                                 response->ids_size(), " ids"));
}

grpc::Status GardenService::Generate(
    grpc::ServerContext* context, const pb::GenerateRequest* request,
    grpc::ServerWriter<pb::GenerateResponse>* writer) {
  RpcLog log("Generate", context);
  if (auto s = CheckText("prompt", request->prompt(), options_.max_text_bytes);
      !s.ok()) {
    return log.Done(s, "");
  }
  const uint32_t max_new = request->max_new_tokens();
  if (max_new < 1 || max_new > options_.max_new_tokens) {
    return log.Done(absl::InvalidArgumentError(absl::StrCat(
                        "max_new_tokens must be in [1, ",
                        options_.max_new_tokens, "], got ", max_new)),
                    "");
  }
  const bool greedy = !request->has_sampling() || request->sampling().greedy();
  SamplingOptions sampling;
  if (!greedy) {
    const pb::Sampling& s = request->sampling();
    sampling.temperature = s.has_temperature() ? s.temperature() : 1.0;
    sampling.top_k = s.top_k();
    sampling.top_p = s.has_top_p() ? s.top_p() : 1.0;
    sampling.seed = s.seed();
    if (!(sampling.temperature >= 0) || !std::isfinite(sampling.temperature)) {
      return log.Done(
          absl::InvalidArgumentError(absl::StrCat(
              "temperature must be a number >= 0, got ", sampling.temperature)),
          "");
    }
    if (!(sampling.top_p > 0 && sampling.top_p <= 1)) {
      return log.Done(absl::InvalidArgumentError(absl::StrCat(
                          "top_p must be in (0, 1], got ", sampling.top_p)),
                      "");
    }
    if (sampling.top_k < 0) {
      return log.Done(absl::InvalidArgumentError(absl::StrCat(
                          "top_k must be >= 0, got ", sampling.top_k)),
                      "");
    }
  }
  auto loaded = LoadCheckpoint(store_, models_, request->checkpoint(),
                               /*need_model=*/true);
  if (!loaded.ok())
    return log.Done(loaded.status(), RefName(request->checkpoint()));
  auto prompt = Encode(*loaded, request->prompt(), "prompt");
  if (!prompt.ok()) return log.Done(prompt.status(), What(*loaded));
  const auto& config = loaded->model->config();
  if (static_cast<int64_t>(prompt->size()) + max_new >
      config.max_position_embeddings) {
    return log.Done(
        absl::InvalidArgumentError(absl::StrCat(
            "prompt (", prompt->size(), " tokens) + max_new_tokens (", max_new,
            ") exceed the model's context of ", config.max_position_embeddings,
            " tokens (max_position_embeddings)")),
        What(*loaded));
  }

  IncrementalText text(*loaded->tokenizer);
  uint32_t index = 0;
  bool first = true;
  auto send = [&](int64_t token, float logprob, const std::string& piece) {
    pb::GenerateResponse message;
    if (first) {
      for (int64_t id : *prompt)
        message.add_prompt_ids(static_cast<int32_t>(id));
      first = false;
    }
    pb::GeneratedToken* t = message.mutable_token();
    t->set_id(static_cast<int32_t>(token));
    t->set_text(piece);
    t->set_logprob(logprob);
    t->set_index(index++);
    return writer->Write(message);
  };
  // The last token's text may wait for the rest of its character; it is
  // flushed with the final token.
  int64_t held_token = -1;
  float held_logprob = 0;
  auto on_token = [&](int64_t token, float logprob) {
    if (context->IsCancelled()) return false;
    if (held_token >= 0 &&
        !send(held_token, held_logprob, text.Add(held_token))) {
      return false;
    }
    held_token = token;
    held_logprob = logprob;
    return true;
  };
  auto generated =
      greedy ? loaded->model->Greedy(*prompt, max_new, on_token)
             : loaded->model->Sample(*prompt, max_new, sampling, on_token);
  if (!generated.ok()) return log.Done(generated.status(), What(*loaded));
  if (held_token >= 0) {
    std::string piece = text.Add(held_token);
    piece += text.Flush();
    if (!send(held_token, held_logprob, piece)) {
      return log.Done(absl::CancelledError("the client went away"),
                      What(*loaded));
    }
  }
  return log.Done(absl::OkStatus(),
                  absl::StrCat(What(*loaded), ", ", index, " tokens"));
}

grpc::Status GardenService::CausalUnmask(
    grpc::ServerContext* context, const pb::CausalUnmaskRequest* request,
    grpc::ServerWriter<pb::UnmaskFrame>* writer) {
  RpcLog log("CausalUnmask", context);
  if (auto s = CheckText("text", request->text(), options_.max_text_bytes);
      !s.ok()) {
    return log.Done(s, "");
  }
  auto key = KeyOf(request->model());
  if (!key.ok()) return log.Done(key.status(), "");
  auto selected = SelectSteps(store_, *key, request->steps());
  if (!selected.ok()) return log.Done(selected.status(), key->Name());

  bool first = true;
  uint32_t frames = 0;
  for (int64_t step : selected->steps) {
    auto loaded = LoadAt(store_, models_, *key, step, /*need_model=*/true);
    if (!loaded.ok()) return log.Done(loaded.status(), key->Name());
    auto ids = Encode(*loaded, request->text(), "text");
    if (!ids.ok()) return log.Done(ids.status(), What(*loaded));
    const int64_t n = static_cast<int64_t>(ids->size());
    if (n < 2) {
      return log.Done(
          absl::InvalidArgumentError(absl::StrCat(
              "text has ", n, " token; unmasking needs at least 2")),
          What(*loaded));
    }
    std::vector<int64_t> ks;
    for (uint32_t k : request->prefix_lengths()) {
      if (k < 1 || k > n - 1) {
        return log.Done(absl::InvalidArgumentError(absl::StrCat(
                            "prefix length ", k, " is outside [1, ", n - 1,
                            "] for a text of ", n, " tokens")),
                        What(*loaded));
      }
      ks.push_back(k);
    }
    if (ks.empty()) ks = DefaultPrefixLengths(n);
    std::sort(ks.begin(), ks.end());
    ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
    for (int64_t k : ks) {
      if (context->IsCancelled()) {
        return log.Done(absl::CancelledError("request cancelled"),
                        What(*loaded));
      }
      const absl::Span<const int64_t> prefix(ids->data(), k);
      auto generated = loaded->model->Greedy(
          prefix, n - k,
          [context](int64_t, float) { return !context->IsCancelled(); });
      if (!generated.ok()) return log.Done(generated.status(), What(*loaded));
      pb::UnmaskFrame frame;
      frame.set_step(step);
      frame.set_k(static_cast<uint32_t>(k));
      frame.set_n(static_cast<uint32_t>(n));
      for (int64_t id : prefix) frame.add_prefix_ids(static_cast<int32_t>(id));
      frame.set_prefix_text(DecodeIds(*loaded->tokenizer, prefix));
      int agree = 0;
      for (size_t i = 0; i < generated->tokens.size(); ++i) {
        const int64_t token = generated->tokens[i];
        frame.add_generated_ids(static_cast<int32_t>(token));
        const bool same = token == (*ids)[k + i];
        frame.add_agree(same);
        agree += same;
      }
      frame.set_generated_text(
          DecodeIds(*loaded->tokenizer, generated->tokens));
      frame.set_recovered(static_cast<double>(agree) / (n - k));
      if (first) {
        for (int64_t id : *ids)
          frame.add_original_ids(static_cast<int32_t>(id));
        first = false;
      }
      if (!writer->Write(frame)) {
        return log.Done(absl::CancelledError("the client went away"),
                        What(*loaded));
      }
      ++frames;
    }
  }
  return log.Done(absl::OkStatus(),
                  absl::StrCat(key->Name(), ", ", frames, " frames"));
}

grpc::Status GardenService::Logits(grpc::ServerContext* context,
                                   const pb::LogitsRequest* request,
                                   pb::LogitsResponse* response) {
  RpcLog log("Logits", context);
  auto prepared = PrepareText(store_, models_, request->checkpoint(),
                              request->text(), options_.max_text_bytes);
  if (!prepared.ok())
    return log.Done(prepared.status(), RefName(request->checkpoint()));
  const auto& [loaded, ids] = *prepared;
  const at::Tensor input = at::tensor(ids, at::kLong).unsqueeze(0);
  auto logits = loaded.model->Forward(input);
  if (!logits.ok()) return log.Done(logits.status(), What(loaded));
  at::Tensor mean;
  {
    c10::InferenceMode guard;
    mean = logits->mean(at::IntArrayRef{0, 1})
               .to(at::kCPU, at::kFloat)
               .contiguous();
  }
  const float* data = mean.data_ptr<float>();
  const int64_t vocab = mean.numel();
  const int64_t k =
      std::min<int64_t>(request->top_k() ? request->top_k() : 10, vocab);
  std::vector<int64_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [data](int64_t a, int64_t b) {
                      return data[a] > data[b] || (data[a] == data[b] && a < b);
                    });
  response->set_tokens(static_cast<uint32_t>(ids.size()));
  for (int64_t i = 0; i < k; ++i) {
    pb::TokenScore* score = response->add_top();
    score->set_id(static_cast<int32_t>(order[i]));
    score->set_piece(
        loaded.tokenizer->IdToPiece(static_cast<int32_t>(order[i])));
    score->set_logit(data[order[i]]);
  }
  if (request->include_all()) {
    response->mutable_mean_logits()->Add(data, data + vocab);
  }
  return log.Done(absl::OkStatus(),
                  absl::StrCat(What(loaded), ", ", ids.size(), " tokens"));
}

grpc::Status GardenService::Attention(grpc::ServerContext* context,
                                      const pb::AttentionRequest* request,
                                      pb::AttentionResponse* response) {
  RpcLog log("Attention", context);
  auto prepared = PrepareText(store_, models_, request->checkpoint(),
                              request->text(), options_.max_text_bytes);
  if (!prepared.ok())
    return log.Done(prepared.status(), RefName(request->checkpoint()));
  const auto& [loaded, ids] = *prepared;
  const auto& config = loaded.model->config();
  const uint64_t heads =
      request->average_heads() ? 1 : config.num_attention_heads;
  const uint64_t values = heads * ids.size() * ids.size();
  if (values > options_.max_attention_values) {
    return log.Done(
        absl::InvalidArgumentError(absl::StrCat(
            "attention of ", ids.size(), " tokens x ", heads, " heads is ",
            values, " values; the limit is ", options_.max_attention_values,
            " (average the heads or use a shorter text)")),
        What(loaded));
  }
  auto probs = loaded.model->AttentionWeights(at::tensor(ids, at::kLong),
                                              request->layer());
  if (!probs.ok()) return log.Done(probs.status(), What(loaded));
  at::Tensor out;
  {
    c10::InferenceMode guard;
    out = request->average_heads() ? probs->mean(0, /*keepdim=*/true) : *probs;
    out = out.to(at::kFloat).contiguous();
  }
  response->set_heads(static_cast<uint32_t>(heads));
  response->set_tokens(static_cast<uint32_t>(ids.size()));
  for (int64_t id : ids) {
    response->add_pieces(loaded.tokenizer->IdToPiece(static_cast<int32_t>(id)));
  }
  const float* data = out.data_ptr<float>();
  response->mutable_weights()->Add(data, data + out.numel());
  return log.Done(absl::OkStatus(),
                  absl::StrCat(What(loaded), " layer ", request->layer()));
}

grpc::Status GardenService::StreamPerplexity(
    grpc::ServerContext* context, const pb::StreamPerplexityRequest* request,
    grpc::ServerWriter<pb::PerplexityPoint>* writer) {
  RpcLog log("StreamPerplexity", context);
  if (request->dataset().empty()) {
    return log.Done(absl::InvalidArgumentError(
                        "dataset is required (a name registered with "
                        "gardend --dataset)"),
                    "");
  }
  if (auto s = ValidateName("dataset", request->dataset()); !s.ok()) {
    return log.Done(s, "");
  }
  if (datasets_ == nullptr) {
    return log.Done(absl::NotFoundError(absl::StrCat(
                        "dataset \"", request->dataset(),
                        "\" is not registered; this server has no datasets "
                        "(start gardend with --dataset NAME=FILE.jsonl)")),
                    "");
  }
  auto dataset = datasets_->Find(request->dataset());
  if (!dataset.ok()) return log.Done(dataset.status(), "");
  size_t count = (*dataset)->texts.size();
  if (request->has_limit()) {
    if (request->limit() < 1) {
      return log.Done(absl::InvalidArgumentError(absl::StrCat(
                          "limit ", request->limit(), " is below 1")),
                      "");
    }
    count = std::min<size_t>(count, static_cast<size_t>(request->limit()));
  }
  auto key = KeyOf(request->model());
  if (!key.ok()) return log.Done(key.status(), "");
  auto selected = SelectSteps(store_, *key, request->steps());
  if (!selected.ok()) return log.Done(selected.status(), key->Name());

  // Checkpoints of one model normally share a tokenizer: encode once per
  // tokenizer, not once per step.
  std::shared_ptr<const Tokenizer> encoded_with;
  std::vector<ContinuationRequest> requests;
  uint64_t target_tokens = 0;
  const auto cancelled = [context] { return context->IsCancelled(); };
  for (int64_t step : selected->steps) {
    auto loaded = LoadAt(store_, models_, *key, step, /*need_model=*/true);
    if (!loaded.ok()) return log.Done(loaded.status(), key->Name());
    if (loaded->tokenizer != encoded_with) {
      requests.clear();
      target_tokens = 0;
      for (size_t i = 0; i < count; ++i) {
        auto r = ClozeRequest(*loaded->tokenizer, (*dataset)->texts[i]);
        if (!r.ok()) {
          return log.Done(
              absl::Status(r.status().code(),
                           absl::StrCat("dataset \"", request->dataset(),
                                        "\" example ", i + 1, ": ",
                                        r.status().message())),
              What(*loaded));
        }
        target_tokens += r->continuation.size();
        requests.push_back(*std::move(r));
      }
      encoded_with = loaded->tokenizer;
    }
    auto scores = ScoreContinuations(*loaded->model, requests, {}, cancelled);
    if (!scores.ok()) return log.Done(scores.status(), What(*loaded));
    double logprob_sum = 0;
    uint32_t greedy = 0, truncated = 0;
    for (const ContinuationScore& score : *scores) {
      logprob_sum += score.logprob;
      greedy += score.greedy;
      truncated += score.truncated;
    }
    const double n = static_cast<double>(scores->size());
    pb::PerplexityPoint point;
    point.set_step(step);
    point.set_mean_logprob(logprob_sum / n);
    point.set_perplexity(std::exp(-logprob_sum / n));
    point.set_accuracy(greedy / n);
    point.set_n(static_cast<uint32_t>(scores->size()));
    point.set_target_tokens(target_tokens);
    point.set_truncated(truncated);
    if (!writer->Write(point)) {
      return log.Done(absl::CancelledError("the client went away"),
                      What(*loaded));
    }
  }
  return log.Done(absl::OkStatus(),
                  absl::StrCat(key->Name(), " on ", request->dataset(), ", ",
                               selected->steps.size(), " steps x ", count,
                               " examples"));
}

}  // namespace garden

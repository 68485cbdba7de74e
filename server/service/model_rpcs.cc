// The model RPCs of GardenService: tokenization, generation, causal
// unmasking, mean logits, attention and perplexity. Each loads what it needs
// from the model cache, runs an engine of server/engine (garden_lm_engine)
// and converts; the only service file that needs libtorch.
#include <algorithm>
#include <cmath>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/number_text.h"
#include "common/base/status.h"
#include "server/engine/generation.h"
#include "server/engine/logits.h"
#include "server/engine/model_text.h"
#include "server/engine/perplexity.h"
#include "server/engine/prune.h"
#include "server/engine/unmask.h"
#include "server/service/convert.h"
#include "server/service/garden_service.h"
#include "server/service/request_prologue.h"
#include "server/service/rpc_log.h"
#include "server/service/stream_write.h"
#include "server/store/dataset_registry.h"
#include "server/store/model_cache.h"

namespace garden {
namespace {

namespace pb = ::garden::v1;

// A checkpoint with its model and tokenizer, ready to run.
struct Loaded {
  CheckpointLocation where;
  std::shared_ptr<const GptNeoxModel> model;
  std::shared_ptr<const Tokenizer> tokenizer;
};

absl::Status CheckText(std::string_view what, const std::string& text,
                       uint64_t limit) {
  if (text.size() > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        ToAbsl(what), " is ", text.size(), " bytes; the limit is ", limit,
        " per request"));
  }
  return absl::OkStatus();
}

// The tokenizer, then (when asked) the model of a located checkpoint.
absl::StatusOr<Loaded> Load(ModelCache& models, const CheckpointLocation& where,
                            bool need_model) {
  Loaded loaded{where, nullptr, nullptr};
  ASSIGN_OR_RETURN(loaded.tokenizer, models.TokenizerFor(where));
  if (need_model) {
    ASSIGN_OR_RETURN(loaded.model, models.Model(where));
  }
  return loaded;
}

absl::StatusOr<Loaded> LoadCheckpoint(CheckpointStore& store,
                                      ModelCache& models,
                                      const pb::CheckpointRef& ref,
                                      bool need_model) {
  ASSIGN_OR_RETURN(const ModelKey key, KeyOf(ref.model()));
  RETURN_IF_ERROR(ValidateStep(ref.step()));
  ASSIGN_OR_RETURN(const CheckpointLocation where,
                   store.Locate(key, ref.step()));
  return Load(models, where, need_model);
}

std::string What(const Loaded& loaded) {
  return absl::StrCat(loaded.where.model.Name(), " step ", loaded.where.step);
}

// "pythia-70m deduped step 1000" as the request spelled it, for logs of
// requests that failed before the checkpoint was found.
std::string RefName(const pb::CheckpointRef& ref) {
  return absl::StrCat(ref.model().suite(), "-", ref.model().size(), " ",
                      ref.model().variant(), " step ", ref.step());
}

absl::StatusOr<std::vector<int64_t>> Encode(const Loaded& loaded,
                                            const std::string& text,
                                            std::string_view what) {
  return EncodeForModel(*loaded.tokenizer, loaded.model->config(), text, what);
}

// A checkpoint's model and tokenizer with a text's tokens, for the RPCs
// that run the model over one text.
struct PreparedText {
  Loaded loaded;
  std::vector<int64_t> ids;
};

// `what` names the checkpoint as the request spelled it, then as found.
absl::StatusOr<PreparedText> PrepareText(
    CheckpointStore& store, ModelCache& models, const pb::CheckpointRef& ref,
    const std::string& text, uint64_t max_text_bytes, std::string& what) {
  what = RefName(ref);
  RETURN_IF_ERROR(CheckText("text", text, max_text_bytes));
  PreparedText out;
  ASSIGN_OR_RETURN(out.loaded,
                   LoadCheckpoint(store, models, ref, /*need_model=*/true));
  what = What(out.loaded);
  auto ids = Encode(out.loaded, text, "text");
  RETURN_IF_ERROR(Annotate(ids.status(), What(out.loaded)));
  out.ids = *std::move(ids);
  return out;
}

// RunLogged for the RPCs that run the model over one text (Logits,
// Attention): PrepareText's errors, else `body` with the checkpoint's model
// and the text's tokens.
grpc::Status RunOnText(
    std::string_view method, grpc::ServerContext* context,
    CheckpointStore& store, ModelCache& models, ComputeGate& compute,
    const pb::CheckpointRef& ref, const std::string& text, uint64_t max_text_bytes,
    absl::FunctionRef<absl::Status(const Loaded& loaded,
                                   const std::vector<int64_t>& ids,
                                   std::string& what)>
        body) {
  return RunLogged(method, context, [&](std::string& what) -> absl::Status {
    // Before the load: a waiting request holds no model.
    ASSIGN_OR_RETURN(ComputeGate::Hold hold, compute.Enter(CancelledBy(context)));
    ASSIGN_OR_RETURN(
        const PreparedText prepared,
        PrepareText(store, models, ref, text, max_text_bytes, what));
    const auto n = static_cast<int64_t>(prepared.ids.size());
    RETURN_IF_ERROR(hold.Reserve(
        ForwardWorkingBytes(prepared.loaded.model->config(), n, n, n, 0),
        CancelledBy(context)));
    return body(prepared.loaded, prepared.ids, what);
  });
}

absl::StatusOr<GenerationOptions> GenerationOptionsOf(
    const pb::GenerateRequest& request, uint32_t max_new_tokens) {
  GenerationOptions options;
  const uint32_t max_new = request.max_new_tokens();
  // What the request may not ask is INVALID_ARGUMENT; what this server
  // will not give one request, RESOURCE_EXHAUSTED naming its limit.
  if (max_new < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_new_tokens must be in [1, ", max_new_tokens, "], got ", max_new));
  }
  if (max_new > max_new_tokens) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "max_new_tokens must be in [1, ", max_new_tokens, "], got ", max_new,
        ": this server's limit per request (--max-new-tokens)"));
  }
  options.max_new_tokens = max_new;
  if (!request.has_sampling() || request.sampling().greedy()) return options;
  const pb::Sampling& s = request.sampling();
  SamplingOptions& sampling = options.sampling.emplace();
  sampling.temperature = s.has_temperature() ? s.temperature() : 1.0;
  sampling.top_k = s.top_k();
  sampling.top_p = s.has_top_p() ? s.top_p() : 1.0;
  sampling.seed = s.seed();
  if (!(sampling.temperature >= 0) || !std::isfinite(sampling.temperature)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "temperature must be a number >= 0, got ", ExactDouble(sampling.temperature)));
  }
  if (!(sampling.top_p > 0 && sampling.top_p <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_p must be in (0, 1], got ", ExactDouble(sampling.top_p)));
  }
  if (sampling.top_k < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be >= 0, got ", sampling.top_k));
  }
  return options;
}

void ToProto(int64_t step, absl::Span<const int64_t> ids, const Unmasking& u,
             pb::UnmaskFrame* frame) {
  frame->set_step(step);
  frame->set_k(static_cast<uint32_t>(u.k));
  frame->set_n(static_cast<uint32_t>(u.n));
  for (int64_t id : ids.subspan(0, u.k)) {
    frame->add_prefix_ids(static_cast<int32_t>(id));
  }
  frame->set_prefix_text(u.prefix_text);
  for (size_t i = 0; i < u.generated.size(); ++i) {
    frame->add_generated_ids(static_cast<int32_t>(u.generated[i]));
    frame->add_agree(u.agree[i]);
    frame->add_generated_pieces(u.generated_pieces[i]);
  }
  frame->set_generated_text(u.generated_text);
  frame->set_recovered(u.recovered);
}

void ToProto(int64_t step, const PerplexityResult& r,
             pb::PerplexityPoint* point) {
  point->set_step(step);
  point->set_mean_logprob(r.mean_logprob);
  point->set_perplexity(r.perplexity);
  point->set_accuracy(r.accuracy);
  point->set_n(r.examples);
  point->set_target_tokens(r.target_tokens);
  point->set_truncated(r.truncated);
}

// The dataset a perplexity request (StreamPerplexityRequest, PruneRequest)
// names and how many of its examples.
template <typename Request>
absl::StatusOr<std::pair<std::shared_ptr<const Dataset>, size_t>> DatasetOf(
    const DatasetRegistry* datasets, const Request& request) {
  if (request.dataset().empty()) {
    return absl::InvalidArgumentError(
        "dataset is required (a name registered with gardend --dataset)");
  }
  RETURN_IF_ERROR(ValidateName("dataset", request.dataset()));
  if (datasets == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("dataset \"", request.dataset(),
                     "\" is not registered; this server has no datasets "
                     "(start gardend with --dataset NAME=FILE.jsonl)"));
  }
  ASSIGN_OR_RETURN(auto dataset, datasets->Find(request.dataset()));
  size_t count = dataset->texts.size();
  if (request.has_limit()) {
    if (request.limit() < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("limit ", request.limit(), " is below 1"));
    }
    count = std::min<size_t>(count, static_cast<size_t>(request.limit()));
  }
  return std::make_pair(std::move(dataset), count);
}

void ToProto(int64_t step, double fraction, const PerplexityResult& r,
             const PrunedModel& pruned, pb::PrunePoint* point) {
  point->set_step(step);
  point->set_fraction(fraction);
  point->set_perplexity(r.perplexity);
  point->set_accuracy(r.accuracy);
  point->set_n(r.examples);
  point->set_mean_logprob(r.mean_logprob);
  point->set_target_tokens(r.target_tokens);
  point->set_truncated(r.truncated);
  point->set_zeroed(pruned.zeroed);
  point->set_matched_numel(pruned.numel);
  for (const PrunedTensorCount& t : pruned.tensors) {
    pb::PrunedTensor* out = point->add_tensors();
    out->set_name(t.name);
    out->set_numel(t.numel);
    out->set_zeroed(t.zeroed);
  }
}

// Loads the model of each selected checkpoint in step order and hands it to
// `visit` with the compute slot it runs in (to reserve its working memory),
// stopping at the first error; `what` (for the RPC log) names the
// checkpoint being worked on.
absl::Status ForEachCheckpoint(
    ModelCache& models, ComputeGate& compute, grpc::ServerContext* context,
    const ModelKey& key, const SelectedSteps& selected, std::string& what,
    absl::FunctionRef<absl::Status(const Loaded&, ComputeGate::Hold&)> visit) {
  for (const CheckpointLocation& where : selected.steps) {
    // A compute slot per checkpoint: other requests take turns between steps.
    ASSIGN_OR_RETURN(ComputeGate::Hold hold, compute.Enter(CancelledBy(context)));
    what = key.Name();
    ASSIGN_OR_RETURN(const Loaded loaded,
                     Load(models, where, /*need_model=*/true));
    what = What(loaded);
    RETURN_IF_ERROR(visit(loaded, hold));
  }
  return absl::OkStatus();
}

// What StreamPerplexity and StreamPrune share: the request's dataset, model
// and steps, one PerplexityEvaluation (encoded once per tokenizer), and each
// selected checkpoint handed to `visit` in turn (ForEachCheckpoint). The
// model key, the number of steps and of examples, for the RPC log.
struct DatasetSweep {
  ModelKey key;
  size_t steps = 0;
  size_t examples = 0;
};
template <typename Request>
absl::StatusOr<DatasetSweep> ForEachCheckpointOnDataset(
    CheckpointStore& store, ModelCache& models, ComputeGate& compute,
    const DatasetRegistry* datasets, grpc::ServerContext* context, const Request& request,
    std::string& what,
    absl::FunctionRef<absl::Status(const Loaded&, ComputeGate::Hold&, PerplexityEvaluation&)>
        visit) {
  ASSIGN_OR_RETURN(const auto dataset, DatasetOf(datasets, request));
  const auto& [examples, count] = dataset;
  DatasetSweep out;
  ASSIGN_OR_RETURN(out.key, KeyOf(request.model()));
  what = out.key.Name();
  ASSIGN_OR_RETURN(const SelectedSteps selected, SelectSteps(store, out.key, request.steps()));
  PerplexityEvaluation evaluation(examples, count);
  RETURN_IF_ERROR(ForEachCheckpoint(
      models, compute, context, out.key, selected, what,
      [&](const Loaded& loaded, ComputeGate::Hold& hold) {
        return visit(loaded, hold, evaluation);
      }));
  out.steps = selected.steps.size();
  out.examples = count;
  return out;
}

// Unmasks a text at one checkpoint, one frame per prefix length; `frames`
// counts the frames written (the first carries the text's ids).
absl::Status UnmaskCheckpoint(const Loaded& loaded,
                              const pb::CausalUnmaskRequest& request,
                              grpc::ServerContext* context, ComputeGate::Hold& hold,
                              grpc::ServerWriter<pb::UnmaskFrame>* writer,
                              uint32_t& frames) {
  ASSIGN_OR_RETURN(const std::vector<int64_t> ids,
                   Encode(loaded, request.text(), "text"));
  const auto n = static_cast<int64_t>(ids.size());
  ASSIGN_OR_RETURN(const std::vector<int64_t> ks,
                   UnmaskPrefixLengths(n, request.prefix_lengths()));
  // The longest prefix is the largest first pass, over a KV cache of the
  // whole text.
  RETURN_IF_ERROR(hold.Reserve(
      ForwardWorkingBytes(loaded.model->config(), ks.back(), 1, n, n),
      CancelledBy(context)));
  for (int64_t k : ks) {
    if (context->IsCancelled()) {
      return absl::CancelledError("request cancelled");
    }
    ASSIGN_OR_RETURN(
        const Unmasking unmasked,
        Unmask(*loaded.model, *loaded.tokenizer, ids, k, CancelledBy(context)));
    pb::UnmaskFrame frame;
    ToProto(loaded.where.step, ids, unmasked, &frame);
    if (frames == 0) {
      for (int64_t id : ids) frame.add_original_ids(static_cast<int32_t>(id));
    }
    if (!WriteToStream(context, writer, frame)) {
      return absl::CancelledError("the client went away");
    }
    ++frames;
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status GardenService::Tokenize(grpc::ServerContext* context,
                                     const pb::TokenizeRequest* request,
                                     pb::TokenizeResponse* response) {
  return RunLogged("Tokenize", context, [&](std::string& what) -> absl::Status {
    RETURN_IF_ERROR(
        CheckText("text", request->text(), options_.max_text_bytes));
    what = RefName(request->checkpoint());
    ASSIGN_OR_RETURN(const Loaded loaded,
                     LoadCheckpoint(store_, models_, request->checkpoint(),
                                    /*need_model=*/false));
    for (int32_t id : loaded.tokenizer->Encode(request->text())) {
      response->add_ids(id);
      response->add_pieces(loaded.tokenizer->IdToPiece(id));
    }
    what = absl::StrCat(What(loaded), ", ", response->ids_size(), " ids");
    return absl::OkStatus();
  });
}

grpc::Status GardenService::Generate(
    grpc::ServerContext* context, const pb::GenerateRequest* request,
    grpc::ServerWriter<pb::GenerateResponse>* writer) {
  return RunLogged("Generate", context, [&](std::string& what) -> absl::Status {
    RETURN_IF_ERROR(
        CheckText("prompt", request->prompt(), options_.max_text_bytes));
    ASSIGN_OR_RETURN(const GenerationOptions options,
                     GenerationOptionsOf(*request, options_.max_new_tokens));
    what = RefName(request->checkpoint());
    ASSIGN_OR_RETURN(ComputeGate::Hold hold, compute_.Enter(CancelledBy(context)));
    ASSIGN_OR_RETURN(const Loaded loaded,
                     LoadCheckpoint(store_, models_, request->checkpoint(),
                                    /*need_model=*/true));
    what = What(loaded);
    ASSIGN_OR_RETURN(const std::vector<int64_t> prompt,
                     Encode(loaded, request->prompt(), "prompt"));
    const auto positions = static_cast<int64_t>(prompt.size());
    const int64_t context_size = positions + options.max_new_tokens;
    RETURN_IF_ERROR(hold.Reserve(
        ForwardWorkingBytes(loaded.model->config(), positions, 1, context_size,
                            context_size),
        CancelledBy(context)));
    uint32_t index = 0;
    RETURN_IF_ERROR(garden::Generate(
        *loaded.model, *loaded.tokenizer, prompt, options, CancelledBy(context),
        [&](const GeneratedPiece& piece) {
          pb::GenerateResponse message;
          if (index == 0) {
            for (int64_t id : prompt) {
              message.add_prompt_ids(static_cast<int32_t>(id));
            }
          }
          pb::GeneratedToken* t = message.mutable_token();
          t->set_id(static_cast<int32_t>(piece.id));
          t->set_text(piece.text);
          t->set_logprob(piece.logprob);
          t->set_index(index++);
          // The slot is given up while the token is written, so concurrent
          // generations interleave token by token.
          hold.Pause();
          const bool written = WriteToStream(context, writer, message);
          return written && hold.Resume(CancelledBy(context)).ok();
        }));
    absl::StrAppend(&what, ", ", index, " tokens");
    return absl::OkStatus();
  });
}

grpc::Status GardenService::CausalUnmask(
    grpc::ServerContext* context, const pb::CausalUnmaskRequest* request,
    grpc::ServerWriter<pb::UnmaskFrame>* writer) {
  return RunLogged(
      "CausalUnmask", context, [&](std::string& what) -> absl::Status {
        RETURN_IF_ERROR(
            CheckText("text", request->text(), options_.max_text_bytes));
        ASSIGN_OR_RETURN(const ModelKey key, KeyOf(request->model()));
        what = key.Name();
        ASSIGN_OR_RETURN(const SelectedSteps selected,
                         SelectSteps(store_, key, request->steps()));
        uint32_t frames = 0;
        RETURN_IF_ERROR(ForEachCheckpoint(
            models_, compute_, context, key, selected, what,
            [&](const Loaded& loaded, ComputeGate::Hold& hold) {
              return UnmaskCheckpoint(loaded, *request, context, hold, writer, frames);
            }));
        what = absl::StrCat(key.Name(), ", ", frames, " frames");
        return absl::OkStatus();
      });
}

grpc::Status GardenService::Logits(grpc::ServerContext* context,
                                   const pb::LogitsRequest* request,
                                   pb::LogitsResponse* response) {
  return RunOnText(
      "Logits", context, store_, models_, compute_, request->checkpoint(),
      request->text(), options_.max_text_bytes,
      [&](const Loaded& loaded, const std::vector<int64_t>& ids,
          std::string& what) -> absl::Status {
        ASSIGN_OR_RETURN(const std::vector<float> mean,
                         MeanLogits(*loaded.model, ids));
        response->set_tokens(static_cast<uint32_t>(ids.size()));
        const int64_t k =
            request->top_k() ? request->top_k() : kDefaultLogitsTopK;
        for (const TokenLogit& top : TopK(mean, k)) {
          pb::TokenScore* score = response->add_top();
          score->set_id(static_cast<int32_t>(top.id));
          score->set_piece(
              loaded.tokenizer->IdToPiece(static_cast<int32_t>(top.id)));
          score->set_logit(top.logit);
        }
        if (request->include_all()) {
          response->mutable_mean_logits()->Add(mean.begin(), mean.end());
        }
        absl::StrAppend(&what, ", ", ids.size(), " tokens");
        return absl::OkStatus();
      });
}

grpc::Status GardenService::Attention(grpc::ServerContext* context,
                                      const pb::AttentionRequest* request,
                                      pb::AttentionResponse* response) {
  return RunOnText(
      "Attention", context, store_, models_, compute_, request->checkpoint(),
      request->text(), options_.max_text_bytes,
      [&](const Loaded& loaded, const std::vector<int64_t>& ids,
          std::string& what) -> absl::Status {
        const uint64_t heads = request->average_heads()
                                   ? 1
                                   : loaded.model->config().num_attention_heads;
        const uint64_t values = heads * ids.size() * ids.size();
        if (values > options_.max_attention_values) {
          return absl::InvalidArgumentError(absl::StrCat(
              "attention of ", ids.size(), " tokens x ", heads, " heads is ",
              values, " values; the limit is ", options_.max_attention_values,
              " (average the heads or use a shorter text)"));
        }
        ASSIGN_OR_RETURN(const std::vector<float> weights,
                         AttentionMatrix(*loaded.model, ids, request->layer(),
                                         request->average_heads()));
        response->set_heads(static_cast<uint32_t>(heads));
        response->set_tokens(static_cast<uint32_t>(ids.size()));
        for (int64_t id : ids) {
          response->add_pieces(
              loaded.tokenizer->IdToPiece(static_cast<int32_t>(id)));
        }
        response->mutable_weights()->Add(weights.begin(), weights.end());
        absl::StrAppend(&what, " layer ", request->layer());
        return absl::OkStatus();
      });
}

grpc::Status GardenService::StreamPerplexity(grpc::ServerContext* context,
                                             const pb::StreamPerplexityRequest* request,
                                             grpc::ServerWriter<pb::PerplexityPoint>* writer) {
  return RunLogged("StreamPerplexity", context, [&](std::string& what) -> absl::Status {
    ASSIGN_OR_RETURN(
        const DatasetSweep sweep,
        ForEachCheckpointOnDataset(
            store_, models_, compute_, datasets_, context, *request, what,
            [&](const Loaded& loaded, ComputeGate::Hold& hold,
                PerplexityEvaluation& evaluation) -> absl::Status {
              ASSIGN_OR_RETURN(const uint64_t bytes,
                               evaluation.WorkingBytes(*loaded.model, loaded.tokenizer));
              RETURN_IF_ERROR(hold.Reserve(bytes, CancelledBy(context)));
              ASSIGN_OR_RETURN(
                  const PerplexityResult result,
                  evaluation.Evaluate(*loaded.model, loaded.tokenizer, CancelledBy(context)));
              pb::PerplexityPoint point;
              ToProto(loaded.where.step, result, &point);
              if (!WriteToStream(context, writer, point)) {
                return absl::CancelledError("the client went away");
              }
              return absl::OkStatus();
            }));
    what = absl::StrCat(sweep.key.Name(), " on ", request->dataset(), ", ", sweep.steps,
                        " steps x ", sweep.examples, " examples");
    return absl::OkStatus();
  });
}

grpc::Status GardenService::StreamPrune(grpc::ServerContext* context,
                                        const pb::PruneRequest* request,
                                        grpc::ServerWriter<pb::PrunePoint>* writer) {
  return RunLogged("StreamPrune", context, [&](std::string& what) -> absl::Status {
    const std::vector<double> fractions(request->fractions().begin(), request->fractions().end());
    RETURN_IF_ERROR(ValidatePruneFractions(fractions));
    RETURN_IF_ERROR(ValidatePruneRegex(request->tensors()));
    ASSIGN_OR_RETURN(
        const DatasetSweep sweep,
        ForEachCheckpointOnDataset(
            store_, models_, compute_, datasets_, context, *request, what,
            [&](const Loaded& loaded, ComputeGate::Hold& hold,
                PerplexityEvaluation& evaluation) -> absl::Status {
              ASSIGN_OR_RETURN(const std::vector<PruneTensor> tensors,
                               MatchPruneTensors(loaded.model->config(), request->tensors()));
              // One pruned copy lives at a time, beside the scoring's memory.
              uint64_t copy_bytes = 0;
              for (double f : fractions) {
                copy_bytes = std::max(copy_bytes, PruneWorkingBytes(tensors, f));
              }
              ASSIGN_OR_RETURN(const uint64_t scoring_bytes,
                               evaluation.WorkingBytes(*loaded.model, loaded.tokenizer));
              RETURN_IF_ERROR(hold.Reserve(copy_bytes + scoring_bytes, CancelledBy(context)));
              for (double fraction : fractions) {
                if (context->IsCancelled()) {
                  return absl::CancelledError("request cancelled");
                }
                ASSIGN_OR_RETURN(const PrunedModel pruned,
                                 PruneModel(loaded.model, tensors, fraction));
                ASSIGN_OR_RETURN(
                    const PerplexityResult result,
                    evaluation.Evaluate(*pruned.model, loaded.tokenizer, CancelledBy(context)));
                pb::PrunePoint point;
                ToProto(loaded.where.step, fraction, result, pruned, &point);
                if (!WriteToStream(context, writer, point)) {
                  return absl::CancelledError("the client went away");
                }
              }
              return absl::OkStatus();
            }));
    what =
        absl::StrCat(sweep.key.Name(), " on ", request->dataset(), ", ", sweep.steps, " steps x ",
                     fractions.size(), " fractions x ", sweep.examples, " examples");
    return absl::OkStatus();
  });
}

}  // namespace garden

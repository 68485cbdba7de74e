// gpt_neox_tool: runs a GPT-NeoX checkpoint directory (config.json plus
// *.safetensors) on token ids, for the reference test and the generation
// benchmark.
//
//   gpt_neox_tool --checkpoint DIR --ids 1,2,3 [--logits_out FILE]
//                 [--cached_logits_out FILE] [--greedy N] [--no_cache]
//                 [--sample N --temperature T --top_k K --top_p P --seed S]
//                 [--attention_layer L --attention_out FILE]
//                 [--threads T] [--device cpu] [--dtype float32]
//
// Ids come from --ids, or whitespace/comma-separated on stdin if --ids is
// absent. Logits ([seq, vocab] float32, native byte order) are written raw;
// --cached_logits_out computes them one token at a time through a KvCache.
// One JSON object goes to stdout: the greedy and/or sampled continuation,
// log-probabilities and timings. Errors go to stderr as the absl::Status
// text, with exit status 1.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/base/status.h"
#include "common/model/gpt_neox.h"
#include "nlohmann/json.hpp"

namespace {

using garden::GptNeoxModel;

absl::StatusOr<std::vector<int64_t>> ParseIds(const std::string& text) {
  std::vector<int64_t> ids;
  for (absl::string_view piece :
       absl::StrSplit(text, absl::ByAnyChar(", \t\n\r"), absl::SkipEmpty())) {
    int64_t id;
    if (!absl::SimpleAtoi(piece, &id)) {
      return absl::InvalidArgumentError("bad token id \"" + std::string(piece) +
                                        "\"");
    }
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError("no token ids");
  return ids;
}

absl::Status WriteTensor(const at::Tensor& t, const std::string& path) {
  at::Tensor host = t.to(at::kCPU, at::kFloat).contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(host.data_ptr()),
            static_cast<std::streamsize>(host.numel() * sizeof(float)));
  if (!out) return absl::UnavailableError(path + ": write failed");
  return absl::OkStatus();
}

nlohmann::json ToJson(const garden::Generation& g, double seconds) {
  return {{"tokens", g.tokens},
          {"logprobs", g.logprobs},
          {"seconds", seconds},
          {"tokens_per_s",
           seconds > 0 ? static_cast<double>(g.tokens.size()) / seconds : 0}};
}

struct Flags {
  std::string checkpoint, ids, logits_out, cached_logits_out, attention_out;
  std::string device = "cpu", dtype = "float32";
  int64_t greedy = 0, sample = 0, top_k = 0, attention_layer = -1;
  double temperature = 1.0, top_p = 1.0;
  uint64_t seed = 0;
  int threads = 0;
  bool no_cache = false;
};

absl::StatusOr<std::unique_ptr<GptNeoxModel>> LoadModel(const Flags& flags) {
  ASSIGN_OR_RETURN(const garden::GptNeoxConfig config,
                   garden::ReadGptNeoxConfig(flags.checkpoint));
  ASSIGN_OR_RETURN(auto source,
                   garden::TensorFileWeightSource::OpenDir(flags.checkpoint));
  garden::LoadOptions options;
  options.device = flags.device;
  options.dtype = flags.dtype;
  return GptNeoxModel::Load(config, *source, options);
}

// One token at a time, except a two-token first chunk when possible, so that
// both the masked (chunk) and unmasked (single token) paths with a non-empty
// cache are exercised.
absl::Status WriteCachedLogits(const GptNeoxModel& model,
                               const at::Tensor& id_tensor,
                               const std::string& path) {
  garden::KvCache cache;
  std::vector<at::Tensor> rows;
  const int64_t n = id_tensor.size(1);
  int64_t pos = 0;
  while (pos < n) {
    const int64_t len = (pos == 1 && n >= 4) ? 2 : 1;
    ASSIGN_OR_RETURN(const at::Tensor logits,
                     model.Forward(id_tensor.narrow(1, pos, len), &cache));
    rows.push_back(logits[0].cpu());
    pos += len;
  }
  return WriteTensor(at::cat(rows, 0), path);
}

// A generation and its wall time, as the report's JSON.
absl::StatusOr<nlohmann::json> Timed(
    const std::function<absl::StatusOr<garden::Generation>()>& generate) {
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<garden::Generation> g = generate();
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  RETURN_IF_ERROR(g.status());
  return ToJson(*g, took.count());
}

absl::Status Run(const Flags& flags) {
  if (flags.threads > 0) {
    at::set_num_threads(flags.threads);
    at::set_num_interop_threads(1);
  }
  std::string id_text = flags.ids;
  if (id_text.empty()) {
    id_text.assign(std::istreambuf_iterator<char>(std::cin), {});
  }
  ASSIGN_OR_RETURN(const std::vector<int64_t> ids, ParseIds(id_text));
  ASSIGN_OR_RETURN(const std::unique_ptr<GptNeoxModel> model, LoadModel(flags));

  at::Tensor id_tensor = at::tensor(ids, at::kLong).unsqueeze(0);
  nlohmann::json report = {{"device", model->device()},
                           {"threads", at::get_num_threads()}};
  if (!flags.logits_out.empty()) {
    ASSIGN_OR_RETURN(const at::Tensor logits, model->Forward(id_tensor));
    RETURN_IF_ERROR(WriteTensor(logits[0], flags.logits_out));
  }
  if (!flags.cached_logits_out.empty()) {
    RETURN_IF_ERROR(
        WriteCachedLogits(*model, id_tensor, flags.cached_logits_out));
  }
  if (flags.greedy > 0) {
    ASSIGN_OR_RETURN(report["greedy"], Timed([&] {
                       return flags.no_cache
                                  ? model->GreedyNoCache(ids, flags.greedy)
                                  : model->Greedy(ids, flags.greedy);
                     }));
  }
  if (flags.sample > 0) {
    garden::SamplingOptions sampling;
    sampling.temperature = flags.temperature;
    sampling.top_k = flags.top_k;
    sampling.top_p = flags.top_p;
    sampling.seed = flags.seed;
    ASSIGN_OR_RETURN(report["sample"], Timed([&] {
                       return model->Sample(ids, flags.sample, sampling);
                     }));
  }
  if (flags.attention_layer >= 0) {
    ASSIGN_OR_RETURN(const at::Tensor probs,
                     model->AttentionWeights(id_tensor, flags.attention_layer));
    if (!flags.attention_out.empty()) {
      RETURN_IF_ERROR(WriteTensor(probs, flags.attention_out));
    }
  }
  std::cout << report.dump() << std::endl;
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"Runs a GPT-NeoX checkpoint on token ids."};
  app.add_option("--checkpoint", flags.checkpoint,
                 "directory with config.json and *.safetensors")
      ->required();
  app.add_option("--ids", flags.ids, "comma-separated ids (else stdin)");
  app.add_option("--logits_out", flags.logits_out, "raw float32 [seq, vocab]");
  app.add_option("--cached_logits_out", flags.cached_logits_out,
                 "the same, computed incrementally with a KV cache");
  app.add_option("--greedy", flags.greedy, "greedy tokens to generate");
  app.add_flag("--no_cache", flags.no_cache, "greedy without the KV cache");
  app.add_option("--sample", flags.sample, "sampled tokens to generate");
  app.add_option("--temperature", flags.temperature);
  app.add_option("--top_k", flags.top_k);
  app.add_option("--top_p", flags.top_p);
  app.add_option("--seed", flags.seed);
  app.add_option("--attention_layer", flags.attention_layer);
  app.add_option("--attention_out", flags.attention_out,
                 "raw float32 [heads, seq, seq]");
  app.add_option("--threads", flags.threads, "torch intra-op threads");
  app.add_option("--device", flags.device, "cpu, cuda, cuda:N, auto");
  app.add_option("--dtype", flags.dtype, "float32, float16, bfloat16");
  CLI11_PARSE(app, argc, argv);

  absl::Status status = Run(flags);
  if (!status.ok()) {
    std::cerr << "gpt_neox_tool: " << status.ToString() << std::endl;
    return 1;
  }
  return 0;
}

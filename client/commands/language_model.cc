// A checkpoint used as a language model: tokenize, generate, unmask, logits,
// attention (see commands.h).
#include "client/output/language_model.h"

#include <cstdint>
#include <iostream>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/commands/commands.h"
#include "common/naming/step_spec.h"

namespace garden::client {
namespace {

class Tokenize : public Command {
 public:
  Tokenize() : Command("tokenize", "token ids of a text") {}

  absl::Status Run(Connection& connection) override {
    pb::TokenizeRequest request;
    RETURN_IF_ERROR(input_.Fill(&request));
    return CallAndRender(connection, &Stub::Tokenize, request, RenderTokens);
  }

 private:
  void AddOptions(CLI::App& command) override {
    input_.AddTo(command);
    format_.AddTo(command, {"json", "table"}, "table");
  }

  CheckpointTextOptions input_;
};

class Generate : public Command {
 public:
  Generate() : Command("generate", "continue a prompt") {}

  absl::Status Run(Connection& connection) override {
    pb::GenerateRequest request;
    RETURN_IF_ERROR(checkpoint_.Fill(request.mutable_checkpoint()));
    request.set_prompt(prompt_);
    request.set_max_new_tokens(max_new_tokens_);
    const bool sampled =
        !greedy_ && (temperature_ || top_p_ || top_k_ != 0 || Given("--seed"));
    pb::Sampling* sampling = request.mutable_sampling();
    sampling->set_greedy(!sampled);
    if (temperature_) sampling->set_temperature(*temperature_);
    if (top_p_) sampling->set_top_p(*top_p_);
    sampling->set_top_k(top_k_);
    sampling->set_seed(seed_);
    GenerateRenderer renderer(format_.format(), std::cout);
    const absl::Status status =
        connection.Stream(&Stub::Generate, request)
            .ReadAll([&](const pb::GenerateResponse& message) {
              renderer.Token(message);
            });
    renderer.Finish(status.ok());
    return status;
  }

 private:
  void AddOptions(CLI::App& command) override {
    checkpoint_.AddTo(command);
    command.add_option("--prompt", prompt_)->required();
    command.add_option("--max-new-tokens", max_new_tokens_)
        ->capture_default_str();
    command.add_flag("--greedy", greedy_,
                     "argmax decoding (the default unless "
                     "--temperature/--top-k/--top-p/--seed is given)");
    command.add_option("--temperature", temperature_, ">= 0 (default 1)");
    command.add_option("--top-k", top_k_,
                       "keep the k likeliest tokens (0: all)");
    command.add_option("--top-p", top_p_, "nucleus mass in (0, 1] (default 1)");
    command.add_option("--seed", seed_, "same seed, same text on CPU");
    format_.AddTo(command, {"json", "text", "table"}, "text",
                  "text (or table) streams as it comes");
  }

  CheckpointOptions checkpoint_;
  std::string prompt_;
  uint32_t max_new_tokens_ = 32;
  bool greedy_ = false;
  std::optional<double> temperature_, top_p_;
  int32_t top_k_ = 0;
  uint64_t seed_ = 0;
};

class Unmask : public Command {
 public:
  Unmask()
      : Command("unmask",
                "causal unmasking: greedy completions from growing prefixes") {}

  absl::Status Run(Connection& connection) override {
    pb::CausalUnmaskRequest request;
    RETURN_IF_ERROR(model_steps_.Fill(&request));
    request.set_text(text_);
    RETURN_IF_ERROR(AddPrefixLengths(&request));
    UnmaskRenderer renderer(format_.format(), std::cout);
    RETURN_IF_ERROR(connection.Stream(&Stub::CausalUnmask, request)
                        .ReadAll([&](const pb::UnmaskFrame& frame) {
                          renderer.Frame(frame);
                        }));
    renderer.Finish();
    return absl::OkStatus();
  }

 private:
  void AddOptions(CLI::App& command) override {
    model_steps_.AddTo(command);
    command.add_option("--text", text_)->required();
    command.add_option("--prefix-lengths", prefix_lengths_,
                       "k values, e.g. 1,3,5 (default: 6 evenly spaced)");
    format_.AddTo(command, {"json", "jsonl", "table"}, "table");
    // The unmasking stream carries no progress yet: accepted like the sweeps.
    progress_.AddTo(command);
  }

  // --prefix-lengths, in the list syntax of --steps.
  absl::Status AddPrefixLengths(pb::CausalUnmaskRequest* request) const {
    if (prefix_lengths_.empty()) return absl::OkStatus();
    auto ks = StepSpec::Parse(prefix_lengths_);
    if (!ks.ok() || ks->kind != StepSpec::Kind::kList) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed --prefix-lengths \"", prefix_lengths_,
                       "\": expected a list such as 1,3,5"));
    }
    for (int64_t k : ks->list) {
      if (k > std::numeric_limits<uint32_t>::max()) {
        return absl::InvalidArgumentError(
            absl::StrCat("prefix length ", k, " is too large"));
      }
      request->add_prefix_lengths(static_cast<uint32_t>(k));
    }
    return absl::OkStatus();
  }

  ModelStepsOptions model_steps_;
  std::string text_;
  std::string prefix_lengths_;
  ProgressOption progress_;
};

class Logits : public Command {
 public:
  Logits() : Command("logits", "mean next-token logits of a text") {}

  absl::Status Run(Connection& connection) override {
    pb::LogitsRequest request;
    RETURN_IF_ERROR(input_.Fill(&request));
    request.set_top_k(top_k_);
    request.set_include_all(all_);
    return CallAndRender(connection, &Stub::Logits, request,
                         [this](const pb::LogitsResponse& response,
                                Format format, std::ostream& out) {
                           RenderLogits(response, all_, format, out);
                         });
  }

 private:
  void AddOptions(CLI::App& command) override {
    input_.AddTo(command);
    command.add_option("--top-k", top_k_)->capture_default_str();
    command.add_flag("--all", all_, "include the whole mean logit vector");
    format_.AddTo(command, {"json", "table"}, "table");
  }

  CheckpointTextOptions input_;
  uint32_t top_k_ = 10;
  bool all_ = false;
};

class Attention : public Command {
 public:
  Attention() : Command("attention", "attention matrix of a layer") {}

  absl::Status Run(Connection& connection) override {
    pb::AttentionRequest request;
    RETURN_IF_ERROR(input_.Fill(&request));
    request.set_layer(layer_);
    request.set_average_heads(average_heads_);
    return CallAndRender(connection, &Stub::Attention, request,
                         [this](const pb::AttentionResponse& response,
                                Format format, std::ostream& out) {
                           RenderAttention(response, average_heads_, format,
                                           out);
                         });
  }

 private:
  void AddOptions(CLI::App& command) override {
    input_.AddTo(command);
    command.add_option("--layer", layer_)->capture_default_str();
    command.add_flag("--average-heads", average_heads_);
    format_.AddTo(command, {"json", "table"}, "table");
  }

  CheckpointTextOptions input_;
  uint32_t layer_ = 0;
  bool average_heads_ = false;
};

}  // namespace

Commands LanguageModelCommands() {
  return MakeCommands<Tokenize, Generate, Unmask, Logits, Attention>();
}

}  // namespace garden::client

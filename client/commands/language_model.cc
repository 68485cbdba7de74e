// A checkpoint used as a language model: tokenize, generate, unmask, logits,
// attention (see commands.h).
#include "client/output/language_model.h"

#include <cstdint>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/commands/commands.h"
#include "client/plot/figures.h"
#include "client/plot/plot.h"
#include "common/naming/names.h"
#include "common/naming/step_spec.h"

namespace garden::client {
namespace {

// The checkpoint, --text, and either --step (one call) or --steps A,B (one
// call per step, in order, each rendered as --step renders it): the input
// of logits and attention.
struct StepsTextOptions {
  CheckpointTextOptions input;
  std::string steps;

  void AddTo(CLI::App& app) {
    input.checkpoint.address.AddTo(app);
    CLI::Option* one =
        app.add_option("--step", input.checkpoint.step, "training step");
    CLI::Option* many = app.add_option(
        "--steps", steps,
        "several steps, e.g. 1000,143000: one call each, in order "
        "(instead of --step)");
    one->excludes(many);
    many->excludes(one);
    app.add_option("--text", input.text)->required();
  }

  // One input per step; INVALID_ARGUMENT without --step or --steps, or for
  // --steps that is not a list.
  absl::StatusOr<std::vector<CheckpointTextOptions>> Inputs() const {
    if (steps.empty()) {
      if (input.checkpoint.step.empty()) {
        return absl::InvalidArgumentError("--step or --steps is required");
      }
      return std::vector<CheckpointTextOptions>{input};
    }
    auto spec = StepSpec::Parse(steps);
    if (!spec.ok() || spec->kind != StepSpec::Kind::kList) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed --steps \"", steps,
                       "\": expected a list such as 1000,143000"));
    }
    std::vector<CheckpointTextOptions> inputs;
    for (int64_t step : spec->list) {
      CheckpointTextOptions& one = inputs.emplace_back(input);
      one.checkpoint.step = absl::StrCat(step);
    }
    return inputs;
  }
};

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
    RETURN_IF_ERROR(plot_.Check());
    UnmaskRenderer renderer(format_.format(), std::cout);
    std::vector<pb::UnmaskFrame> frames;
    RETURN_IF_ERROR(connection.Stream(&Stub::CausalUnmask, request)
                        .ReadAll([&](const pb::UnmaskFrame& frame) {
                          renderer.Frame(frame);
                          if (plot_.drawing()) frames.push_back(frame);
                        }));
    renderer.Finish();
    if (!plot_.drawing()) return absl::OkStatus();
    return plot::Render(UnmaskFigure(FigureSteps(frames), ModelName(model_steps_.address)),
                        plot_.path);
  }

 private:
  void AddOptions(CLI::App& command) override {
    model_steps_.AddTo(command);
    command.add_option("--text", text_)->required();
    command.add_option("--prefix-lengths", prefix_lengths_,
                       "k values, e.g. 1,3,5 (default: 6 evenly spaced)");
    format_.AddTo(command, {"json", "jsonl", "table"}, "table");
    plot_.AddTo(command,
                "a panel per step, a line per prefix length: the prefix in "
                "black, the completion in grey, tokens that agree "
                "underlined (Figure 5)");
    // The unmasking stream carries no progress yet: accepted like the sweeps.
    progress_.AddTo(command);
  }

  // The frames by step, each generated token with its own text (the
  // server's generated_pieces).
  static std::vector<UnmaskStep> FigureSteps(const std::vector<pb::UnmaskFrame>& frames) {
    std::vector<UnmaskStep> steps;
    for (const pb::UnmaskFrame& frame : frames) {
      if (steps.empty() || steps.back().step != frame.step()) {
        steps.push_back({.step = frame.step()});
      }
      UnmaskLine& line = steps.back().lines.emplace_back();
      line.k = frame.k();
      line.prefix = frame.prefix_text();
      line.generated_text = frame.generated_text();
      line.agree.assign(frame.agree().begin(), frame.agree().end());
      line.generated.assign(frame.generated_pieces().begin(), frame.generated_pieces().end());
    }
    return steps;
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
  PlotOption plot_;
  ProgressOption progress_;
};

class Logits : public Command {
 public:
  Logits() : Command("logits", "mean next-token logits of a text") {}

  absl::Status Run(Connection& connection) override {
    ASSIGN_OR_RETURN(const std::vector<CheckpointTextOptions> inputs,
                     input_.Inputs());
    std::vector<pb::LogitsRequest> requests;
    for (const CheckpointTextOptions& input : inputs) {
      pb::LogitsRequest& request = requests.emplace_back();
      RETURN_IF_ERROR(input.Fill(&request));
      request.set_top_k(top_k_);
      // The figure needs the whole vector; the output shows it with --all.
      request.set_include_all(all_ || plot_.drawing());
    }
    RETURN_IF_ERROR(plot_.Check());
    std::vector<LogitsCurve> curves;
    for (const pb::LogitsRequest& request : requests) {
      RETURN_IF_ERROR(CallAndRender(
          connection, &Stub::Logits, request,
          [&](const pb::LogitsResponse& response, Format format,
              std::ostream& out) {
            RenderLogits(response, all_, format, out);
            if (plot_.drawing()) {
              curves.push_back(
                  {.step = request.checkpoint().step(),
                   .mean_logits = std::vector<double>(
                       response.mean_logits().begin(),
                       response.mean_logits().end())});
            }
          }));
    }
    if (!plot_.drawing()) return absl::OkStatus();
    return plot::Render(
        LogitsFigure(curves, ModelName(input_.input.checkpoint.address)),
        plot_.path);
  }

 private:
  void AddOptions(CLI::App& command) override {
    input_.AddTo(command);
    command.add_option("--top-k", top_k_)->capture_default_str();
    command.add_flag("--all", all_, "include the whole mean logit vector");
    format_.AddTo(command, {"json", "table"}, "table");
    plot_.AddTo(command,
                "the mean logit of every token id, a curve per step "
                "(Figure 1 D)");
  }

  StepsTextOptions input_;
  PlotOption plot_;
  uint32_t top_k_ = 10;
  bool all_ = false;
};

class Attention : public Command {
 public:
  Attention() : Command("attention", "attention matrix of a layer") {}

  absl::Status Run(Connection& connection) override {
    ASSIGN_OR_RETURN(const std::vector<CheckpointTextOptions> inputs,
                     input_.Inputs());
    std::vector<pb::AttentionRequest> requests;
    for (const CheckpointTextOptions& input : inputs) {
      pb::AttentionRequest& request = requests.emplace_back();
      RETURN_IF_ERROR(input.Fill(&request));
      request.set_layer(layer_);
      request.set_average_heads(average_heads_);
    }
    RETURN_IF_ERROR(plot_.Check());
    std::vector<AttentionMap> maps;
    for (const pb::AttentionRequest& request : requests) {
      RETURN_IF_ERROR(CallAndRender(
          connection, &Stub::Attention, request,
          [&](const pb::AttentionResponse& response, Format format,
              std::ostream& out) {
            RenderAttention(response, average_heads_, format, out);
            if (plot_.drawing()) {
              maps.push_back(
                  {.step = request.checkpoint().step(),
                   .heads = response.heads(),
                   .tokens = response.tokens(),
                   .pieces = std::vector<std::string>(
                       response.pieces().begin(), response.pieces().end()),
                   .weights = std::vector<double>(response.weights().begin(),
                                                  response.weights().end())});
            }
          }));
    }
    if (!plot_.drawing()) return absl::OkStatus();
    return plot::Render(
        AttentionFigure(maps, ModelName(input_.input.checkpoint.address),
                        layer_, average_heads_),
        plot_.path);
  }

 private:
  void AddOptions(CLI::App& command) override {
    input_.AddTo(command);
    command.add_option("--layer", layer_)->capture_default_str();
    command.add_flag("--average-heads", average_heads_);
    format_.AddTo(command, {"json", "table"}, "table");
    plot_.AddTo(command,
                "the matrix, a panel per head (or their mean), a row per "
                "step (Figure 1 C)");
  }

  StepsTextOptions input_;
  PlotOption plot_;
  uint32_t layer_ = 0;
  bool average_heads_ = false;
};

}  // namespace

Commands LanguageModelCommands() {
  return MakeCommands<Tokenize, Generate, Unmask, Logits, Attention>();
}

}  // namespace garden::client

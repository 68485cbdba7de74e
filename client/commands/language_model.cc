#include "client/commands/language_model.h"

#include <cstdint>
#include <iostream>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/commands/options.h"
#include "client/output/language_model.h"
#include "common/base/status.h"
#include "common/naming/step_spec.h"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;
using Stub = Connection::Stub;

class Tokenize : public Command {
 public:
  void Register(CLI::App& app) override {
    subcommand_ = app.add_subcommand("tokenize", "token ids of a text");
    checkpoint_.AddTo(*subcommand_);
    subcommand_->add_option("--text", text_)->required();
    format_.AddTo(*subcommand_, {"json", "table"}, "table");
  }

  absl::Status Run(Connection& connection) override {
    pb::TokenizeRequest request;
    RETURN_IF_ERROR(checkpoint_.Fill(request.mutable_checkpoint()));
    request.set_text(text_);
    pb::TokenizeResponse response;
    RETURN_IF_ERROR(connection.Call(&Stub::Tokenize, request, &response));
    RenderTokens(response, format_.format(), std::cout);
    return absl::OkStatus();
  }

 private:
  CheckpointOptions checkpoint_;
  std::string text_;
  FormatOption format_;
};

class Generate : public Command {
 public:
  void Register(CLI::App& app) override {
    subcommand_ = app.add_subcommand("generate", "continue a prompt");
    checkpoint_.AddTo(*subcommand_);
    subcommand_->add_option("--prompt", prompt_)->required();
    subcommand_->add_option("--max-new-tokens", max_new_tokens_)
        ->capture_default_str();
    subcommand_->add_flag("--greedy", greedy_,
                          "argmax decoding (the default unless "
                          "--temperature/--top-k/--top-p/--seed is given)");
    subcommand_->add_option("--temperature", temperature_, ">= 0 (default 1)");
    subcommand_->add_option("--top-k", top_k_,
                            "keep the k likeliest tokens (0: all)");
    subcommand_->add_option("--top-p", top_p_,
                            "nucleus mass in (0, 1] (default 1)");
    subcommand_->add_option("--seed", seed_, "same seed, same text on CPU");
    format_.AddTo(*subcommand_, {"json", "text", "table"}, "text",
                  "text (or table) streams as it comes");
  }

  absl::Status Run(Connection& connection) override {
    pb::GenerateRequest request;
    RETURN_IF_ERROR(checkpoint_.Fill(request.mutable_checkpoint()));
    request.set_prompt(prompt_);
    request.set_max_new_tokens(max_new_tokens_);
    const bool sampled =
        !greedy_ && (temperature_ || top_p_ || top_k_ != 0 ||
                     subcommand_->count("--seed") > 0);
    pb::Sampling* sampling = request.mutable_sampling();
    sampling->set_greedy(!sampled);
    if (temperature_) sampling->set_temperature(*temperature_);
    if (top_p_) sampling->set_top_p(*top_p_);
    sampling->set_top_k(top_k_);
    sampling->set_seed(seed_);
    GenerateRenderer renderer(format_.format(), std::cout);
    auto stream = connection.Stream(&Stub::Generate, request);
    pb::GenerateResponse message;
    while (stream.Read(&message)) renderer.Token(message);
    absl::Status status = stream.Finish();
    renderer.Finish(status.ok());
    return status;
  }

 private:
  CheckpointOptions checkpoint_;
  std::string prompt_;
  uint32_t max_new_tokens_ = 32;
  bool greedy_ = false;
  std::optional<double> temperature_, top_p_;
  int32_t top_k_ = 0;
  uint64_t seed_ = 0;
  FormatOption format_;
};

class Unmask : public Command {
 public:
  void Register(CLI::App& app) override {
    subcommand_ = app.add_subcommand(
        "unmask", "causal unmasking: greedy completions from growing prefixes");
    address_.AddTo(*subcommand_);
    steps_.AddTo(*subcommand_);
    subcommand_->add_option("--text", text_)->required();
    subcommand_->add_option("--prefix-lengths", prefix_lengths_,
                            "k values, e.g. 1,3,5 (default: 6 evenly spaced)");
    format_.AddTo(*subcommand_, {"json", "jsonl", "table"}, "table");
    // The unmasking stream carries no progress yet: accepted like the sweeps.
    progress_.AddTo(*subcommand_);
  }

  absl::Status Run(Connection& connection) override {
    pb::CausalUnmaskRequest request;
    address_.Fill(request.mutable_model());
    ASSIGN_OR_RETURN(*request.mutable_steps(), steps_.Selection());
    request.set_text(text_);
    RETURN_IF_ERROR(AddPrefixLengths(&request));
    UnmaskRenderer renderer(format_.format(), std::cout);
    auto stream = connection.Stream(&Stub::CausalUnmask, request);
    pb::UnmaskFrame frame;
    while (stream.Read(&frame)) renderer.Frame(frame);
    RETURN_IF_ERROR(stream.Finish());
    renderer.Finish();
    return absl::OkStatus();
  }

 private:
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

  AddressOptions address_;
  StepsOption steps_;
  std::string text_;
  std::string prefix_lengths_;
  FormatOption format_;
  ProgressOption progress_;
};

class Logits : public Command {
 public:
  void Register(CLI::App& app) override {
    subcommand_ =
        app.add_subcommand("logits", "mean next-token logits of a text");
    checkpoint_.AddTo(*subcommand_);
    subcommand_->add_option("--text", text_)->required();
    subcommand_->add_option("--top-k", top_k_)->capture_default_str();
    subcommand_->add_flag("--all", all_, "include the whole mean logit vector");
    format_.AddTo(*subcommand_, {"json", "table"}, "table");
  }

  absl::Status Run(Connection& connection) override {
    pb::LogitsRequest request;
    RETURN_IF_ERROR(checkpoint_.Fill(request.mutable_checkpoint()));
    request.set_text(text_);
    request.set_top_k(top_k_);
    request.set_include_all(all_);
    pb::LogitsResponse response;
    RETURN_IF_ERROR(connection.Call(&Stub::Logits, request, &response));
    RenderLogits(response, all_, format_.format(), std::cout);
    return absl::OkStatus();
  }

 private:
  CheckpointOptions checkpoint_;
  std::string text_;
  uint32_t top_k_ = 10;
  bool all_ = false;
  FormatOption format_;
};

class Attention : public Command {
 public:
  void Register(CLI::App& app) override {
    subcommand_ =
        app.add_subcommand("attention", "attention matrix of a layer");
    checkpoint_.AddTo(*subcommand_);
    subcommand_->add_option("--text", text_)->required();
    subcommand_->add_option("--layer", layer_)->capture_default_str();
    subcommand_->add_flag("--average-heads", average_heads_);
    format_.AddTo(*subcommand_, {"json", "table"}, "table");
  }

  absl::Status Run(Connection& connection) override {
    pb::AttentionRequest request;
    RETURN_IF_ERROR(checkpoint_.Fill(request.mutable_checkpoint()));
    request.set_text(text_);
    request.set_layer(layer_);
    request.set_average_heads(average_heads_);
    pb::AttentionResponse response;
    RETURN_IF_ERROR(connection.Call(&Stub::Attention, request, &response));
    RenderAttention(response, average_heads_, format_.format(), std::cout);
    return absl::OkStatus();
  }

 private:
  CheckpointOptions checkpoint_;
  std::string text_;
  uint32_t layer_ = 0;
  bool average_heads_ = false;
  FormatOption format_;
};

}  // namespace

std::unique_ptr<Command> TokenizeCommand() {
  return std::make_unique<Tokenize>();
}
std::unique_ptr<Command> GenerateCommand() {
  return std::make_unique<Generate>();
}
std::unique_ptr<Command> UnmaskCommand() { return std::make_unique<Unmask>(); }
std::unique_ptr<Command> LogitsCommand() { return std::make_unique<Logits>(); }
std::unique_ptr<Command> AttentionCommand() {
  return std::make_unique<Attention>();
}

}  // namespace garden::client

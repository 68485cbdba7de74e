// garden: the command-line client of gardend.
//
//   garden --server ADDR models --format json
//   garden --server ADDR tensors --size 70m --variant deduped --step 1000
//   garden --server ADDR generate --size 70m --variant deduped --step 143000
//          --prompt "The capital of France is" --max-new-tokens 20 --greedy
//   garden --server ADDR unmask --size 70m --steps 1000,143000 --text "..."
//   garden --server ADDR hist --size 70m --variant deduped --steps all
//          --tensor embed_out.weight --bins 64 [--range=-0.1:0.1] --format
//          jsonl
//
// Errors print "garden: CODE: message" on stderr and exit 1 (2 for usage).
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/output/output.h"
#include "client/plot/figures.h"
#include "client/plot/plot.h"
#include "common/naming/names.h"
#include "common/naming/step_spec.h"
#include "common/stats/histogram.h"
#include "garden/v1/garden.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"

namespace {

namespace pb = ::garden::v1;
using garden::client::ProgressBar;

std::string CodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

int Fail(int code, const std::string& message) {
  std::cerr << "garden: " << CodeName(code) << ": " << message << std::endl;
  return 1;
}

int Fail(const grpc::Status& status) {
  return Fail(status.error_code(), status.error_message());
}

int Fail(const absl::Status& status) {
  return Fail(static_cast<int>(status.code()), std::string(status.message()));
}

struct Address {
  std::string suite = std::string(garden::kDefaultSuite);
  std::string size;
  std::string variant = "standard";

  void AddTo(CLI::App* app) {
    app->add_option("--suite", suite, "model suite")->capture_default_str();
    app->add_option("--size", size, "model size, e.g. 70m, 1.4b")->required();
    app->add_option("--variant", variant, "standard|deduped (aliases NDD, DD)")
        ->capture_default_str();
  }
  void Fill(pb::ModelRef* ref) const {
    ref->set_suite(suite);
    ref->set_size(size);
    ref->set_variant(variant);
  }
};

// "lo:hi" with lo possibly negative; finite values are checked by the server.
absl::StatusOr<std::pair<double, double>> ParseRange(const std::string& text) {
  const size_t colon = text.find(':', 1);
  double lo, hi;
  if (colon == std::string::npos ||
      !absl::SimpleAtod(text.substr(0, colon), &lo) ||
      !absl::SimpleAtod(text.substr(colon + 1), &hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed range \"", text, "\": expected LO:HI"));
  }
  return std::make_pair(lo, hi);
}

absl::StatusOr<int64_t> ParseOneStep(const std::string& text) {
  auto step = garden::StepSpec::Parse(text);
  if (!step.ok()) return step.status();
  if (step->kind != garden::StepSpec::Kind::kList || step->list.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--step takes one step, got \"", text, "\""));
  }
  return step->list[0];
}

absl::StatusOr<pb::StepSelection> ParseSteps(const std::string& text) {
  auto spec = garden::StepSpec::Parse(text);
  if (!spec.ok()) return spec.status();
  pb::StepSelection selection;
  switch (spec->kind) {
    case garden::StepSpec::Kind::kAll:
      selection.set_all(true);
      break;
    case garden::StepSpec::Kind::kList:
      for (int64_t s : spec->list) selection.mutable_list()->add_steps(s);
      break;
    case garden::StepSpec::Kind::kRange:
      selection.mutable_range()->set_first(spec->first);
      selection.mutable_range()->set_last(spec->last);
      break;
  }
  return selection;
}

// --plot FILE and --compare MODEL..., shared by hist, msd and ppl.
struct FigureOptions {
  std::string plot;
  std::vector<std::string> compare;

  void AddTo(CLI::App* app) {
    app->add_option("--plot", plot,
                    "draw the figure to FILE.png or FILE.svg");
    app->add_option("--compare", compare,
                    "more models, one row each: SIZE[:VARIANT] or "
                    "SUITE/SIZE[:VARIANT] (repeatable)");
  }
};

// The main model and the --compare ones, each with its display name.
struct NamedModel {
  pb::ModelRef ref;
  std::string name;
};

absl::StatusOr<std::vector<NamedModel>> ModelsToRun(
    const Address& address, const std::vector<std::string>& compare) {
  std::vector<Address> addresses = {address};
  for (const std::string& text : compare) {
    Address other = address;
    std::string rest = text;
    if (const size_t slash = rest.find('/'); slash != std::string::npos) {
      other.suite = rest.substr(0, slash);
      rest = rest.substr(slash + 1);
    }
    if (const size_t colon = rest.find(':'); colon != std::string::npos) {
      other.variant = rest.substr(colon + 1);
      rest = rest.substr(0, colon);
    }
    other.size = rest;
    addresses.push_back(other);
  }
  std::vector<NamedModel> models;
  for (const Address& a : addresses) {
    auto key = garden::MakeModelKey(a.suite, a.size, a.variant);
    if (!key.ok()) return key.status();
    NamedModel& m = models.emplace_back();
    a.Fill(&m.ref);
    m.name = key->Name();
  }
  return models;
}

// The models to run (ModelsToRun), once the plot path is known writable:
// a bad path fails before any RPC.
absl::StatusOr<std::vector<NamedModel>> PrepareFigure(
    const FigureOptions& figure, const Address& address) {
  auto runs = ModelsToRun(address, figure.compare);
  if (!runs.ok()) return runs.status();
  if (!figure.plot.empty()) {
    if (auto s = garden::plot::CheckWritable(figure.plot); !s.ok()) return s;
  }
  return runs;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "garden: ask gardend how a model's parameters change over training"};
  app.require_subcommand(1);
  const char* env_server = std::getenv("GARDEN_SERVER");
  std::string server = env_server ? env_server : "127.0.0.1:50051";
  double timeout_s = 0;
  app.add_option("--server", server, "gardend address (env GARDEN_SERVER)")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "deadline in seconds (0: none)");

  // models
  auto* models =
      app.add_subcommand("models", "list suites, sizes, variants and steps");
  std::string models_format = "table";
  std::string models_suite;
  models->add_option("--format", models_format)
      ->check(CLI::IsMember({"json", "table"}))
      ->capture_default_str();
  models->add_option("--suite", models_suite, "only this suite");

  // tensors
  auto* tensors =
      app.add_subcommand("tensors", "list the tensors of one checkpoint");
  Address tensors_address;
  std::string tensors_step;
  std::string tensors_format = "table";
  tensors_address.AddTo(tensors);
  tensors->add_option("--step", tensors_step, "training step")->required();
  tensors->add_option("--format", tensors_format)
      ->check(CLI::IsMember({"json", "table"}))
      ->capture_default_str();

  // hist
  auto* hist = app.add_subcommand("hist", "histogram of a tensor at each step");
  Address hist_address;
  std::string hist_steps = "all",
              hist_tensor = std::string(garden::kDefaultTensor);
  std::string hist_range, hist_format = "table";
  int64_t hist_bins = 64;
  bool no_progress = false;
  hist_address.AddTo(hist);
  hist->add_option("--steps", hist_steps,
                   "all, a list 0,1,2,512, or a range 1000:5000")
      ->capture_default_str();
  hist->add_option("--tensor", hist_tensor)->capture_default_str();
  hist->add_option("--bins", hist_bins, "1..65536")->capture_default_str();
  hist->add_option(
      "--range", hist_range,
      "LO:HI (write --range=-0.1:0.1); default: min..max over all steps");
  hist->add_option("--format", hist_format)
      ->check(CLI::IsMember({"jsonl", "csv", "table"}))
      ->capture_default_str();
  hist->add_flag("--no-progress", no_progress, "no progress bar on stderr");
  bool hist_exclude = false;
  hist->add_flag("--exclude-flagged", hist_exclude,
                 "leave out steps the audit flags");
  FigureOptions hist_figure;
  hist_figure.AddTo(hist);
  bool hist_branches = false;
  hist->add_flag("--branches", hist_branches,
                 "with --plot: overlay the modes of the smoothed density and "
                 "the bifurcation onset");

  // Model commands address one checkpoint (--step) or several (--steps).
  struct Checkpoint {
    Address address;
    std::string step;
    void AddTo(CLI::App* app) {
      address.AddTo(app);
      app->add_option("--step", step, "training step")->required();
    }
  };
  auto* tokenize = app.add_subcommand("tokenize", "token ids of a text");
  Checkpoint tokenize_at;
  std::string tokenize_text, tokenize_format = "table";
  tokenize_at.AddTo(tokenize);
  tokenize->add_option("--text", tokenize_text)->required();
  tokenize->add_option("--format", tokenize_format)
      ->check(CLI::IsMember({"json", "table"}))
      ->capture_default_str();

  auto* generate = app.add_subcommand("generate", "continue a prompt");
  Checkpoint generate_at;
  std::string generate_prompt, generate_format = "text";
  uint32_t max_new_tokens = 32;
  bool greedy = false;
  std::optional<double> temperature, top_p;
  int32_t top_k = 0;
  uint64_t seed = 0;
  generate_at.AddTo(generate);
  generate->add_option("--prompt", generate_prompt)->required();
  generate->add_option("--max-new-tokens", max_new_tokens)
      ->capture_default_str();
  generate->add_flag("--greedy", greedy,
                     "argmax decoding (the default unless "
                     "--temperature/--top-k/--top-p/--seed is given)");
  generate->add_option("--temperature", temperature, ">= 0 (default 1)");
  generate->add_option("--top-k", top_k,
                       "keep the k likeliest tokens (0: all)");
  generate->add_option("--top-p", top_p, "nucleus mass in (0, 1] (default 1)");
  generate->add_option("--seed", seed, "same seed, same text on CPU");
  generate
      ->add_option("--format", generate_format,
                   "text (or table) streams as it comes")
      ->check(CLI::IsMember({"json", "text", "table"}))
      ->capture_default_str();

  auto* unmask = app.add_subcommand(
      "unmask", "causal unmasking: greedy completions from growing prefixes");
  Address unmask_address;
  std::string unmask_steps = "all", unmask_text, unmask_ks,
              unmask_format = "table";
  unmask_address.AddTo(unmask);
  unmask->add_option("--steps", unmask_steps)->capture_default_str();
  unmask->add_option("--text", unmask_text)->required();
  unmask->add_option("--prefix-lengths", unmask_ks,
                     "k values, e.g. 1,3,5 (default: 6 evenly spaced)");
  unmask->add_option("--format", unmask_format)
      ->check(CLI::IsMember({"json", "jsonl", "table"}))
      ->capture_default_str();

  auto* logits =
      app.add_subcommand("logits", "mean next-token logits of a text");
  Checkpoint logits_at;
  std::string logits_text, logits_format = "table";
  uint32_t logits_top_k = 10;
  bool logits_all = false;
  logits_at.AddTo(logits);
  logits->add_option("--text", logits_text)->required();
  logits->add_option("--top-k", logits_top_k)->capture_default_str();
  logits->add_flag("--all", logits_all, "include the whole mean logit vector");
  logits->add_option("--format", logits_format)
      ->check(CLI::IsMember({"json", "table"}))
      ->capture_default_str();

  auto* attention =
      app.add_subcommand("attention", "attention matrix of a layer");
  Checkpoint attention_at;
  std::string attention_text, attention_format = "table";
  uint32_t attention_layer = 0;
  bool average_heads = false;
  attention_at.AddTo(attention);
  attention->add_option("--text", attention_text)->required();
  attention->add_option("--layer", attention_layer)->capture_default_str();
  attention->add_flag("--average-heads", average_heads);
  attention->add_option("--format", attention_format)
      ->check(CLI::IsMember({"json", "table"}))
      ->capture_default_str();

  auto* msd = app.add_subcommand(
      "msd", "mean square displacement of a tensor over training");
  Address msd_address;
  std::string msd_steps = "all",
              msd_tensor = std::string(garden::kDefaultTensor);
  std::string msd_mode = "reference", msd_format = "table";
  std::optional<int64_t> msd_reference;
  msd_address.AddTo(msd);
  msd->add_option("--steps", msd_steps)->capture_default_str();
  msd->add_option("--tensor", msd_tensor)->capture_default_str();
  msd->add_option("--mode", msd_mode,
                  "reference: to t0; consecutive: step to step; lag: "
                  "time-averaged over pairs tau apart (one point per tau)")
      ->check(CLI::IsMember({"reference", "consecutive", "lag"}))
      ->capture_default_str();
  bool msd_exclude = false;
  msd->add_flag("--exclude-flagged", msd_exclude,
                "leave out steps the audit flags");
  msd->add_option("--reference", msd_reference,
                  "reference step t0 (default: the first selected step)");
  FigureOptions msd_figure;
  msd_figure.AddTo(msd);
  msd->add_option("--format", msd_format)
      ->check(CLI::IsMember({"jsonl", "json", "csv", "table"}))
      ->capture_default_str();

  auto* bifurcation = app.add_subcommand(
      "bifurcation", "bimodality of a tensor's distribution over training");
  Address bif_address;
  std::string bif_steps = "all",
              bif_tensor = std::string(garden::kDefaultTensor);
  std::string bif_format = "table";
  int64_t bif_persist = 2;
  bool bif_exclude = false;
  bifurcation->add_flag("--exclude-flagged", bif_exclude,
                        "leave out steps the audit flags");
  std::optional<double> bif_min_dip;
  std::optional<int64_t> bif_bins;
  bif_address.AddTo(bifurcation);
  bifurcation->add_option("--steps", bif_steps)->capture_default_str();
  bifurcation->add_option("--tensor", bif_tensor)->capture_default_str();
  bifurcation
      ->add_option("--persist", bif_persist,
                   "consecutive bimodal steps that make the onset")
      ->capture_default_str();
  bifurcation->add_option("--min-dip", bif_min_dip,
                          "dip that makes a step bimodal (default 0.05)");
  bifurcation->add_option("--bins", bif_bins,
                          "density resolution (default 1024)");
  bifurcation->add_option("--format", bif_format)
      ->check(CLI::IsMember({"json", "jsonl", "table"}))
      ->capture_default_str();

  auto* audit = app.add_subcommand(
      "audit", "identical steps, discontinuities and missing steps of a suite");
  Address audit_address;
  std::string audit_steps = "all",
              audit_tensor = std::string(garden::kDefaultTensor);
  std::string audit_format = "table";
  bool audit_all = false;
  std::optional<double> audit_z;
  audit_address.AddTo(audit);
  audit->add_option("--steps", audit_steps)->capture_default_str();
  audit->add_option("--tensor", audit_tensor)->capture_default_str();
  audit->add_flag("--all-tensors", audit_all,
                  "hash every float tensor, not only --tensor");
  audit->add_option("--z", audit_z,
                    "robust z of a discontinuity (default 3.5)");
  audit->add_option("--format", audit_format)
      ->check(CLI::IsMember({"json", "table"}))
      ->capture_default_str();

  auto* datasets =
      app.add_subcommand("datasets", "evaluation datasets the server holds");
  std::string datasets_format = "table";
  datasets->add_option("--format", datasets_format)
      ->check(CLI::IsMember({"json", "table"}))
      ->capture_default_str();

  auto* ppl = app.add_subcommand(
      "ppl", "LAMBADA-style perplexity and accuracy at each step");
  Address ppl_address;
  std::string ppl_steps = "all", ppl_dataset, ppl_format = "table";
  std::optional<int64_t> ppl_limit;
  ppl_address.AddTo(ppl);
  ppl->add_option("--steps", ppl_steps)->capture_default_str();
  ppl->add_option("--dataset", ppl_dataset,
                  "a dataset name the server registered (garden datasets)")
      ->required();
  ppl->add_option("--limit", ppl_limit,
                  "score the first N examples (default: all)");
  FigureOptions ppl_figure;
  ppl_figure.AddTo(ppl);
  ppl->add_option("--format", ppl_format)
      ->check(CLI::IsMember({"jsonl", "json", "csv", "table"}))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 << 20);  // attention matrices
  auto channel = grpc::CreateCustomChannel(
      server, grpc::InsecureChannelCredentials(), channel_args);
  auto stub = pb::Garden::NewStub(channel);
  auto make_context = [&] {
    auto context = std::make_unique<grpc::ClientContext>();
    if (timeout_s > 0) {
      context->set_deadline(
          std::chrono::system_clock::now() +
          std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
    }
    return context;
  };

  if (*models) {
    pb::ListModelsRequest request;
    request.set_suite(models_suite);
    pb::ListModelsResponse response;
    auto context = make_context();
    grpc::Status status = stub->ListModels(context.get(), request, &response);
    if (!status.ok()) return Fail(status);
    if (models_format == "json") {
      std::cout << garden::client::ModelsJson(response).dump(2) << "\n";
    } else {
      garden::client::PrintModelsTable(response, std::cout);
    }
    return 0;
  }

  // Fills a request's checkpoint from --suite/--size/--variant/--step.
  auto fill_checkpoint = [](const Checkpoint& at,
                            pb::CheckpointRef* ref) -> absl::Status {
    auto step = ParseOneStep(at.step);
    if (!step.ok()) return step.status();
    at.address.Fill(ref->mutable_model());
    ref->set_step(*step);
    return absl::OkStatus();
  };
  // JSON output never fails on bytes that are not UTF-8.
  auto print_json = [](const nlohmann::json& j) {
    std::cout << j.dump(-1, ' ', false,
                        nlohmann::json::error_handler_t::replace)
              << "\n"
              << std::flush;
  };

  if (*bifurcation) {
    pb::StreamBifurcationRequest request;
    bif_address.Fill(request.mutable_model());
    auto steps = ParseSteps(bif_steps);
    if (!steps.ok()) return Fail(steps.status());
    *request.mutable_steps() = *steps;
    request.set_tensor(bif_tensor);
    request.set_exclude_flagged(bif_exclude);
    if (bif_persist < 1 || bif_persist > std::numeric_limits<uint32_t>::max()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("persist must be at least 1, got ", bif_persist)));
    }
    request.set_persist(static_cast<uint32_t>(bif_persist));
    if (bif_min_dip) request.set_min_dip(*bif_min_dip);
    if (bif_bins) {
      if (*bif_bins < 0 || *bif_bins > std::numeric_limits<uint32_t>::max()) {
        return Fail(garden::ValidateBins(*bif_bins));
      }
      request.set_bins(static_cast<uint32_t>(*bif_bins));
    }
    ProgressBar progress(isatty(STDERR_FILENO));
    auto context = make_context();
    auto reader = stub->StreamBifurcation(context.get(), request);
    pb::StreamBifurcationResponse message;
    nlohmann::json rows = nlohmann::json::array();
    nlohmann::json onset = nullptr;
    bool header = false;
    while (reader->Read(&message)) {
      if (message.has_progress()) {
        progress.Update(message.progress().done(), message.progress().total(),
                        "scanning");
        continue;
      }
      progress.Clear();
      if (message.has_summary()) {
        if (message.summary().has_onset()) onset = message.summary().onset();
        continue;
      }
      const pb::BifurcationStep& s = message.step();
      nlohmann::json j = {
          {"step", s.step()},
          {"bc", std::isfinite(s.bc()) ? nlohmann::json(s.bc()) : nullptr},
          {"modes", std::vector<double>(s.mode_locations().begin(),
                                        s.mode_locations().end())},
          {"mode_heights", std::vector<double>(s.mode_heights().begin(),
                                               s.mode_heights().end())},
          {"dip", s.dip()},
          {"bimodal", s.bimodal()},
          {"bandwidth", s.bandwidth()}};
      if (bif_format == "jsonl") {
        print_json(j);
      } else if (bif_format == "table") {
        if (!header) {
          std::cout << absl::StrFormat("%8s %7s %7s %8s  %s\n", "STEP", "BC",
                                       "DIP", "BIMODAL", "MODES");
          header = true;
        }
        std::string modes;
        for (double m : s.mode_locations()) {
          absl::StrAppend(&modes, modes.empty() ? "" : " ",
                          absl::StrFormat("%.4g", m));
        }
        std::cout << absl::StrFormat("%8d %7.3f %7.3f %8s  %s\n", s.step(),
                                     s.bc(), s.dip(),
                                     s.bimodal() ? "yes" : "no", modes)
                  << std::flush;
      } else {
        rows.push_back(std::move(j));
      }
    }
    progress.Clear();
    grpc::Status status = reader->Finish();
    if (!status.ok()) return Fail(status);
    if (bif_format == "json") {
      print_json({{"onset", onset}, {"steps", rows}});
    } else if (bif_format == "table") {
      std::cout << (onset.is_null()
                        ? std::string("onset: none")
                        : absl::StrCat("onset: step ", onset.get<int64_t>()))
                << "\n";
    }
    return 0;
  }

  if (*audit) {
    pb::AuditRequest request;
    audit_address.Fill(request.mutable_model());
    auto steps = ParseSteps(audit_steps);
    if (!steps.ok()) return Fail(steps.status());
    *request.mutable_steps() = *steps;
    request.set_tensor(audit_tensor);
    request.set_all_tensors(audit_all);
    if (audit_z) request.set_z_threshold(*audit_z);
    pb::AuditResponse response;
    auto context = make_context();
    grpc::Status status = stub->Audit(context.get(), request, &response);
    if (!status.ok()) return Fail(status);
    if (audit_format == "json") {
      nlohmann::json findings = nlohmann::json::array();
      for (const auto& f : response.findings()) {
        findings.push_back({{"kind", f.kind()},
                            {"steps", std::vector<int64_t>(f.steps().begin(),
                                                           f.steps().end())},
                            {"tensor", f.tensor()},
                            {"detail", f.detail()},
                            {"score", f.score()}});
      }
      print_json({{"findings", findings},
                  {"steps_checked", response.steps_checked()},
                  {"tensors_checked", response.tensors_checked()}});
    } else {
      std::cout << absl::StrFormat(
          "%d steps, %d tensors checked: %d findings\n",
          response.steps_checked(), response.tensors_checked(),
          response.findings_size());
      for (const auto& f : response.findings()) {
        std::cout << absl::StrFormat("%-14s %-24s %s  %s\n", f.kind(),
                                     garden::FormatSteps(std::vector<int64_t>(
                                         f.steps().begin(), f.steps().end())),
                                     f.tensor(), f.detail());
      }
    }
    return 0;
  }

  if (*datasets) {
    pb::ListDatasetsResponse response;
    auto context = make_context();
    grpc::Status status =
        stub->ListDatasets(context.get(), pb::ListDatasetsRequest(), &response);
    if (!status.ok()) return Fail(status);
    if (datasets_format == "json") {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& d : response.datasets()) {
        list.push_back({{"name", d.name()}, {"examples", d.examples()}});
      }
      print_json({{"datasets", list}});
    } else {
      for (const auto& d : response.datasets()) {
        std::cout << absl::StrFormat("%-24s %8d examples\n", d.name(),
                                     d.examples());
      }
    }
    return 0;
  }

  if (*ppl) {
    auto runs = PrepareFigure(ppl_figure, ppl_address);
    if (!runs.ok()) return Fail(runs.status());
    pb::StreamPerplexityRequest request;
    auto steps = ParseSteps(ppl_steps);
    if (!steps.ok()) return Fail(steps.status());
    *request.mutable_steps() = *steps;
    request.set_dataset(ppl_dataset);
    if (ppl_limit) request.set_limit(*ppl_limit);
    const bool several = runs->size() > 1;
    std::vector<garden::client::ModelSeries> figure;
    nlohmann::json rows = nlohmann::json::array();
    bool header = false;
    for (const NamedModel& run : *runs) {
      *request.mutable_model() = run.ref;
      garden::client::ModelSeries& series = figure.emplace_back();
      series.model = run.name;
      auto context = make_context();
      auto reader = stub->StreamPerplexity(context.get(), request);
      pb::PerplexityPoint p;
      while (reader->Read(&p)) {
        series.x.push_back(static_cast<double>(p.step()));
        series.y.push_back(p.perplexity());
        nlohmann::json j = {{"step", p.step()},
                            {"perplexity", p.perplexity()},
                            {"accuracy", p.accuracy()},
                            {"n", p.n()},
                            {"mean_logprob", p.mean_logprob()},
                            {"target_tokens", p.target_tokens()},
                            {"truncated", p.truncated()}};
        if (several) j["model"] = run.name;
        if (ppl_format == "jsonl") {
          print_json(j);
        } else if (ppl_format == "csv") {
          if (!header) {
            std::cout << (several ? "model," : "")
                      << "step,perplexity,accuracy,n,mean_logprob,"
                         "target_tokens,truncated\n";
          }
          std::cout << (several ? run.name + "," : "")
                    << absl::StrFormat("%d,%.17g,%.17g,%d,%.17g,%d,%d\n",
                                       p.step(), p.perplexity(), p.accuracy(),
                                       p.n(), p.mean_logprob(),
                                       p.target_tokens(), p.truncated());
        } else if (ppl_format == "table") {
          if (!header) {
            std::cout << absl::StrFormat("%-28s %8s %14s %9s %6s\n", "MODEL",
                                         "STEP", "PERPLEXITY", "ACCURACY",
                                         "N");
          }
          std::cout << absl::StrFormat("%-28s %8d %14.6g %9.4f %6d\n",
                                       run.name, p.step(), p.perplexity(),
                                       p.accuracy(), p.n())
                    << std::flush;
        } else {
          rows.push_back(std::move(j));
        }
        header = true;
      }
      grpc::Status status = reader->Finish();
      if (!status.ok()) return Fail(status);
    }
    if (ppl_format == "json") print_json({{"steps", rows}});
    if (!ppl_figure.plot.empty()) {
      auto s = garden::plot::Render(
          garden::client::PerplexityFigure(figure, ppl_dataset),
          ppl_figure.plot);
      if (!s.ok()) return Fail(s);
    }
    return 0;
  }

  if (*msd) {
    auto runs = PrepareFigure(msd_figure, msd_address);
    if (!runs.ok()) return Fail(runs.status());
    pb::StreamMSDRequest request;
    auto steps = ParseSteps(msd_steps);
    if (!steps.ok()) return Fail(steps.status());
    *request.mutable_steps() = *steps;
    request.set_tensor(msd_tensor);
    request.set_mode(msd_mode == "consecutive" ? pb::StreamMSDRequest::CONSECUTIVE
                     : msd_mode == "lag"       ? pb::StreamMSDRequest::LAG
                                               : pb::StreamMSDRequest::REFERENCE);
    if (msd_reference) request.set_reference_step(*msd_reference);
    request.set_exclude_flagged(msd_exclude);
    const bool several = runs->size() > 1;
    std::vector<garden::client::ModelSeries> figure;
    nlohmann::json per_model = nlohmann::json::array();
    bool header = false;
    for (const NamedModel& run : *runs) {
      *request.mutable_model() = run.ref;
      garden::client::ModelSeries& series = figure.emplace_back();
      series.model = run.name;
      auto context = make_context();
      auto reader = stub->StreamMSD(context.get(), request);
      pb::StreamMSDResponse message;
      nlohmann::json points = nlohmann::json::array();
      nlohmann::json peak = nullptr;
      while (reader->Read(&message)) {
        if (message.has_peak()) {
          peak = {{"step", message.peak().step()},
                  {"msd", message.peak().msd()}};
          series.peak_x = static_cast<double>(message.peak().step());
          continue;
        }
        const pb::MSDPoint& p = message.point();
        series.x.push_back(static_cast<double>(p.step()));
        series.y.push_back(p.msd());
        nlohmann::json j = {{"step", p.step()},
                            {"msd", p.msd()},
                            {"from_step", p.from_step()},
                            {"rate", p.rate()},
                            {"n", p.n()}};
        if (p.has_msd_before_previous()) {
          j["msd_before_previous"] = p.msd_before_previous();
          j["before_previous_step"] = p.before_previous_step();
        }
        if (request.mode() == pb::StreamMSDRequest::LAG) {
          j["lag"] = p.step();
          j["pairs"] = p.pairs();
        }
        if (several) j["model"] = run.name;
        if (msd_format == "jsonl") {
          print_json(j);
        } else if (msd_format == "csv") {
          if (!header) {
            std::cout << (several ? "model," : "") << "step,msd,from_step,rate,n\n";
          }
          std::cout << (several ? run.name + "," : "") << p.step() << ","
                    << absl::StrFormat("%.17g", p.msd()) << "," << p.from_step()
                    << "," << absl::StrFormat("%.17g", p.rate()) << "," << p.n()
                    << "\n";
        } else if (msd_format == "table") {
          if (!header) {
            std::cout << absl::StrFormat("%-28s %8s %8s %14s %14s\n", "MODEL",
                                         "STEP", "FROM", "MSD", "RATE");
          }
          std::cout << absl::StrFormat("%-28s %8d %8d %14.6g %14.6g\n",
                                       run.name, p.step(), p.from_step(),
                                       p.msd(), p.rate())
                    << std::flush;
        } else {
          points.push_back(std::move(j));
        }
        header = true;
      }
      grpc::Status status = reader->Finish();
      if (!status.ok()) return Fail(status);
      if (msd_format == "json") {
        if (several) {
          per_model.push_back(
              {{"model", run.name}, {"points", points}, {"peak", peak}});
        } else {
          print_json({{"points", points}, {"peak", peak}});
        }
      } else if (msd_format == "table" && !peak.is_null()) {
        std::cout << absl::StrFormat(
            "%speak: %s %d, msd %.6g\n", several ? run.name + " " : "",
            request.mode() == pb::StreamMSDRequest::LAG ? "lag" : "step",
            peak["step"].get<int64_t>(), peak["msd"].get<double>());
      }
    }
    if (msd_format == "json" && several) print_json({{"models", per_model}});
    if (!msd_figure.plot.empty()) {
      auto s = garden::plot::Render(
          garden::client::MsdFigure(figure, msd_tensor, msd_mode),
          msd_figure.plot);
      if (!s.ok()) return Fail(s);
    }
    return 0;
  }

  if (*tokenize) {
    pb::TokenizeRequest request;
    if (auto s = fill_checkpoint(tokenize_at, request.mutable_checkpoint());
        !s.ok()) {
      return Fail(s);
    }
    request.set_text(tokenize_text);
    pb::TokenizeResponse response;
    auto context = make_context();
    grpc::Status status = stub->Tokenize(context.get(), request, &response);
    if (!status.ok()) return Fail(status);
    if (tokenize_format == "json") {
      print_json(
          {{"ids",
            std::vector<int32_t>(response.ids().begin(), response.ids().end())},
           {"pieces", std::vector<std::string>(response.pieces().begin(),
                                               response.pieces().end())}});
    } else {
      for (int i = 0; i < response.ids_size(); ++i) {
        std::cout << absl::StrFormat("%8d  %s\n", response.ids(i),
                                     response.pieces(i));
      }
    }
    return 0;
  }

  if (*generate) {
    pb::GenerateRequest request;
    if (auto s = fill_checkpoint(generate_at, request.mutable_checkpoint());
        !s.ok()) {
      return Fail(s);
    }
    request.set_prompt(generate_prompt);
    request.set_max_new_tokens(max_new_tokens);
    const bool sampled = !greedy && (temperature || top_p || top_k != 0 ||
                                     generate->count("--seed") > 0);
    pb::Sampling* sampling = request.mutable_sampling();
    sampling->set_greedy(!sampled);
    if (temperature) sampling->set_temperature(*temperature);
    if (top_p) sampling->set_top_p(*top_p);
    sampling->set_top_k(top_k);
    sampling->set_seed(seed);
    auto context = make_context();
    auto reader = stub->Generate(context.get(), request);
    pb::GenerateResponse message;
    std::string text;
    std::vector<int32_t> ids, prompt_ids;
    std::vector<float> logprobs;
    while (reader->Read(&message)) {
      prompt_ids.insert(prompt_ids.end(), message.prompt_ids().begin(),
                        message.prompt_ids().end());
      const auto& token = message.token();
      ids.push_back(token.id());
      logprobs.push_back(token.logprob());
      text += token.text();
      if (generate_format != "json") std::cout << token.text() << std::flush;
    }
    grpc::Status status = reader->Finish();
    if (generate_format != "json" && !ids.empty()) std::cout << "\n";
    if (!status.ok()) return Fail(status);
    if (generate_format == "json") {
      print_json({{"text", text},
                  {"ids", ids},
                  {"prompt_ids", prompt_ids},
                  {"logprobs", logprobs}});
    }
    return 0;
  }

  if (*unmask) {
    pb::CausalUnmaskRequest request;
    unmask_address.Fill(request.mutable_model());
    auto steps = ParseSteps(unmask_steps);
    if (!steps.ok()) return Fail(steps.status());
    *request.mutable_steps() = *steps;
    request.set_text(unmask_text);
    if (!unmask_ks.empty()) {
      auto ks = garden::StepSpec::Parse(unmask_ks);  // the same list syntax
      if (!ks.ok() || ks->kind != garden::StepSpec::Kind::kList) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat("malformed --prefix-lengths \"", unmask_ks,
                         "\": expected a list such as 1,3,5")));
      }
      for (int64_t k : ks->list) {
        if (k > std::numeric_limits<uint32_t>::max()) {
          return Fail(absl::InvalidArgumentError(
              absl::StrCat("prefix length ", k, " is too large")));
        }
        request.add_prefix_lengths(static_cast<uint32_t>(k));
      }
    }
    auto context = make_context();
    auto reader = stub->CausalUnmask(context.get(), request);
    pb::UnmaskFrame frame;
    nlohmann::json all = {{"frames", nlohmann::json::array()}};
    bool header = false;
    while (reader->Read(&frame)) {
      nlohmann::json j = {
          {"step", frame.step()},
          {"k", frame.k()},
          {"n", frame.n()},
          {"prefix", frame.prefix_text()},
          {"prefix_ids", std::vector<int32_t>(frame.prefix_ids().begin(),
                                              frame.prefix_ids().end())},
          {"generated", frame.generated_text()},
          {"generated_ids", std::vector<int32_t>(frame.generated_ids().begin(),
                                                 frame.generated_ids().end())},
          {"agree",
           std::vector<bool>(frame.agree().begin(), frame.agree().end())},
          {"recovered", frame.recovered()}};
      if (frame.original_ids_size() > 0) {
        all["n"] = frame.n();
        all["original_ids"] = std::vector<int32_t>(frame.original_ids().begin(),
                                                   frame.original_ids().end());
      }
      if (unmask_format == "jsonl") {
        print_json(j);
      } else if (unmask_format == "table") {
        if (!header) {
          std::cout << absl::StrFormat("%8s %4s %4s %9s  %s\n", "STEP", "K",
                                       "N", "RECOVERED", "PREFIX | COMPLETION");
          header = true;
        }
        std::string line = frame.prefix_text() + " | " + frame.generated_text();
        std::replace_if(
            line.begin(), line.end(),
            [](char c) { return c == '\n' || c == '\t' || c == '\r'; }, ' ');
        std::cout << absl::StrFormat("%8d %4d %4d %9.3f  %s\n", frame.step(),
                                     frame.k(), frame.n(), frame.recovered(),
                                     line)
                  << std::flush;
      } else {
        all["frames"].push_back(std::move(j));
      }
    }
    grpc::Status status = reader->Finish();
    if (!status.ok()) return Fail(status);
    if (unmask_format == "json") print_json(all);
    return 0;
  }

  if (*logits) {
    pb::LogitsRequest request;
    if (auto s = fill_checkpoint(logits_at, request.mutable_checkpoint());
        !s.ok()) {
      return Fail(s);
    }
    request.set_text(logits_text);
    request.set_top_k(logits_top_k);
    request.set_include_all(logits_all);
    pb::LogitsResponse response;
    auto context = make_context();
    grpc::Status status = stub->Logits(context.get(), request, &response);
    if (!status.ok()) return Fail(status);
    if (logits_format == "json") {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& t : response.top()) {
        top.push_back(
            {{"id", t.id()}, {"piece", t.piece()}, {"logit", t.logit()}});
      }
      nlohmann::json out = {{"tokens", response.tokens()}, {"top", top}};
      if (logits_all) {
        out["mean_logits"] = std::vector<float>(response.mean_logits().begin(),
                                                response.mean_logits().end());
      }
      print_json(out);
    } else {
      std::cout << absl::StrFormat("mean over %d positions\n%8s %12s  %s\n",
                                   response.tokens(), "ID", "LOGIT", "PIECE");
      for (const auto& t : response.top()) {
        std::cout << absl::StrFormat("%8d %12.5f  %s\n", t.id(), t.logit(),
                                     t.piece());
      }
    }
    return 0;
  }

  if (*attention) {
    pb::AttentionRequest request;
    if (auto s = fill_checkpoint(attention_at, request.mutable_checkpoint());
        !s.ok()) {
      return Fail(s);
    }
    request.set_text(attention_text);
    request.set_layer(attention_layer);
    request.set_average_heads(average_heads);
    pb::AttentionResponse response;
    auto context = make_context();
    grpc::Status status = stub->Attention(context.get(), request, &response);
    if (!status.ok()) return Fail(status);
    const int heads = response.heads(), n = response.tokens();
    auto weight = [&](int h, int i, int j) {
      return response.weights((int64_t{h} * n + i) * n + j);
    };
    if (attention_format == "json") {
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
      print_json({{"heads", heads},
                  {"tokens", n},
                  {"pieces", std::vector<std::string>(response.pieces().begin(),
                                                      response.pieces().end())},
                  {"weights", weights}});
    } else {
      for (int h = 0; h < heads; ++h) {
        std::cout << (average_heads ? std::string("mean of the heads")
                                    : absl::StrCat("head ", h))
                  << "\n";
        for (int i = 0; i < n; ++i) {
          std::cout << absl::StrFormat("%14.14s", response.pieces(i));
          for (int j = 0; j < n; ++j) {
            std::cout << absl::StrFormat(" %5.3f", weight(h, i, j));
          }
          std::cout << "\n";
        }
      }
    }
    return 0;
  }

  if (*tensors) {
    pb::ListTensorsRequest request;
    tensors_address.Fill(request.mutable_checkpoint()->mutable_model());
    auto step = ParseOneStep(tensors_step);
    if (!step.ok()) return Fail(step.status());
    request.mutable_checkpoint()->set_step(*step);
    pb::ListTensorsResponse response;
    auto context = make_context();
    grpc::Status status = stub->ListTensors(context.get(), request, &response);
    if (!status.ok()) return Fail(status);
    if (tensors_format == "json") {
      std::cout << garden::client::TensorsJson(response).dump(2) << "\n";
    } else {
      garden::client::PrintTensorsTable(response, std::cout);
    }
    return 0;
  }

  // hist
  if (hist_branches && hist_figure.plot.empty()) {
    return Fail(absl::InvalidArgumentError("--branches draws on a --plot"));
  }
  auto runs = PrepareFigure(hist_figure, hist_address);
  if (!runs.ok()) return Fail(runs.status());
  pb::StreamHistogramsRequest request;
  request.set_tensor(hist_tensor);
  request.set_exclude_flagged(hist_exclude);
  // 0 and values past 65536 go to the server, which names the limit;
  // values no request can carry are refused here the same way.
  if (hist_bins < 0 || hist_bins > std::numeric_limits<uint32_t>::max()) {
    return Fail(garden::ValidateBins(hist_bins));
  }
  request.set_bins(static_cast<uint32_t>(hist_bins));
  auto steps = ParseSteps(hist_steps);
  if (!steps.ok()) return Fail(steps.status());
  *request.mutable_steps() = *steps;
  if (!hist_range.empty()) {
    auto range = ParseRange(hist_range);
    if (!range.ok()) return Fail(range.status());
    request.mutable_range()->set_lo(range->first);
    request.mutable_range()->set_hi(range->second);
  }

  const bool several = runs->size() > 1;
  std::vector<garden::client::ModelSeries> figure;
  bool first = true;
  for (const NamedModel& run : *runs) {
    *request.mutable_model() = run.ref;
    garden::client::ModelSeries& series = figure.emplace_back();
    series.model = run.name;
    ProgressBar progress(!no_progress && isatty(STDERR_FILENO));
    auto context = make_context();
    auto reader = stub->StreamHistograms(context.get(), request);
    pb::StreamHistogramsResponse message;
    while (reader->Read(&message)) {
      if (message.has_progress()) {
        progress.Update(message.progress().done(), message.progress().total(),
                        "scanning for the common range");
        continue;
      }
      const pb::HistogramFrame& frame = message.frame();
      progress.Clear();
      if (!hist_figure.plot.empty()) {
        series.heat.push_back(
            {.x = static_cast<double>(frame.step()),
             .lo = frame.lo(),
             .hi = frame.hi(),
             .counts = std::vector<double>(frame.counts().begin(),
                                           frame.counts().end())});
      }
      if (hist_format == "jsonl") {
        nlohmann::json j = garden::client::FrameJson(frame);
        if (several) j["model"] = run.name;
        std::cout << j.dump() << "\n";
      } else if (hist_format == "csv") {
        if (first) garden::client::PrintFrameCsvHeader(frame, std::cout);
        garden::client::PrintFrameCsvRow(frame, std::cout);
      } else {
        if (first) garden::client::PrintFrameTableHeader(std::cout);
        garden::client::PrintFrameTableRow(frame, std::cout);
      }
      std::cout.flush();
      first = false;
      progress.Update(frame.index() + 1, frame.total(),
                      absl::StrCat(run.name, " step ", frame.step()));
    }
    progress.Clear();
    grpc::Status status = reader->Finish();
    if (!status.ok()) return Fail(status);
    if (hist_branches) {
      pb::StreamBifurcationRequest branches;
      *branches.mutable_model() = run.ref;
      *branches.mutable_steps() = request.steps();
      branches.set_tensor(hist_tensor);
      branches.set_exclude_flagged(hist_exclude);
      auto bif_context = make_context();
      auto bif_reader = stub->StreamBifurcation(bif_context.get(), branches);
      pb::StreamBifurcationResponse m;
      while (bif_reader->Read(&m)) {
        if (m.has_summary() && m.summary().has_onset()) {
          series.onset = m.summary().onset();
        } else if (m.has_step()) {
          for (double mode : m.step().mode_locations()) {
            series.branch_steps.push_back(static_cast<double>(m.step().step()));
            series.branch_values.push_back(mode);
          }
        }
      }
      grpc::Status bif_status = bif_reader->Finish();
      if (!bif_status.ok()) return Fail(bif_status);
    }
  }
  if (!hist_figure.plot.empty()) {
    auto s = garden::plot::Render(
        garden::client::HistogramFigure(figure, hist_tensor), hist_figure.plot);
    if (!s.ok()) return Fail(s);
  }
  return 0;
}

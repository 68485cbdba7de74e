// garden: the command-line client of gardend.
//
//   garden --server ADDR models --format json
//   garden --server ADDR tensors --size 70m --variant deduped --step 1000
//   garden --server ADDR hist --size 70m --variant deduped --steps all
//          --tensor embed_out.weight --bins 64 [--range=-0.1:0.1] --format
//          jsonl
//
// Errors print "garden: CODE: message" on stderr and exit 1 (2 for usage).
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/output.h"
#include "common/histogram.h"
#include "common/names.h"
#include "common/step_spec.h"
#include "garden/v1/garden.grpc.pb.h"
#include "grpcpp/grpcpp.h"

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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto channel =
      grpc::CreateChannel(server, grpc::InsecureChannelCredentials());
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

  if (*tensors) {
    pb::ListTensorsRequest request;
    tensors_address.Fill(request.mutable_checkpoint()->mutable_model());
    auto step = garden::StepSpec::Parse(tensors_step);
    if (step.ok() && (step->kind != garden::StepSpec::Kind::kList ||
                      step->list.size() != 1)) {
      step = absl::InvalidArgumentError(
          absl::StrCat("--step takes one step, got \"", tensors_step, "\""));
    }
    if (!step.ok()) return Fail(step.status());
    request.mutable_checkpoint()->set_step(step->list[0]);
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
  pb::StreamHistogramsRequest request;
  hist_address.Fill(request.mutable_model());
  request.set_tensor(hist_tensor);
  if (hist_bins < 0 || hist_bins > std::numeric_limits<uint32_t>::max()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "bins must be in [1, ", garden::kMaxBins, "], got ", hist_bins)));
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

  ProgressBar progress(!no_progress && isatty(STDERR_FILENO));
  auto context = make_context();
  auto reader = stub->StreamHistograms(context.get(), request);
  pb::StreamHistogramsResponse message;
  bool first = true;
  while (reader->Read(&message)) {
    if (message.has_progress()) {
      progress.Update(message.progress().done(), message.progress().total(),
                      "scanning for the common range");
      continue;
    }
    const pb::HistogramFrame& frame = message.frame();
    progress.Clear();
    if (hist_format == "jsonl") {
      std::cout << garden::client::FrameJson(frame).dump() << "\n";
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
                    absl::StrCat("step ", frame.step()));
  }
  progress.Clear();
  grpc::Status status = reader->Finish();
  if (!status.ok()) return Fail(status);
  return 0;
}

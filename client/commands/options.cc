#include "client/commands/options.h"

#include <unistd.h>

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/naming/step_spec.h"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;

absl::StatusOr<int64_t> ParseOneStep(const std::string& text) {
  ASSIGN_OR_RETURN(const StepSpec step, StepSpec::Parse(text));
  if (step.kind != StepSpec::Kind::kList || step.list.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--step takes one step, got \"", text, "\""));
  }
  return step.list[0];
}

// "[SUITE/]SIZE[:VARIANT][@RUN]"; what it leaves out is `base`'s.
AddressOptions CompareAddress(const AddressOptions& base,
                              const std::string& text) {
  AddressOptions other = base;
  std::string rest = text;
  // "@" alone: the main run.
  if (const size_t at = rest.find('@'); at != std::string::npos) {
    other.run = rest.substr(at + 1);
    rest = rest.substr(0, at);
  }
  if (const size_t slash = rest.find('/'); slash != std::string::npos) {
    other.suite = rest.substr(0, slash);
    rest = rest.substr(slash + 1);
  }
  if (const size_t colon = rest.find(':'); colon != std::string::npos) {
    other.variant = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  other.size = rest;
  return other;
}

}  // namespace

void AddressOptions::AddTo(CLI::App& app) {
  app.add_option("--suite", suite, "model suite")->capture_default_str();
  app.add_option("--size", size, "model size, e.g. 70m, 1.4b")->required();
  app.add_option("--variant", variant, "standard|deduped (aliases NDD, DD)")
      ->capture_default_str();
  app.add_option("--run", run,
                 "training run where the suite has several: seedN, weight-seedN, "
                 "data-seedN (default: the main run)");
}

void AddressOptions::Fill(pb::ModelRef* ref) const {
  ref->set_suite(suite);
  ref->set_size(size);
  ref->set_variant(variant);
  ref->set_run(run);
}

absl::StatusOr<ModelKey> AddressOptions::Key() const {
  return MakeModelKey(suite, size, variant, run);
}

void CheckpointOptions::AddTo(CLI::App& app) {
  address.AddTo(app);
  app.add_option("--step", step, "training step")->required();
}

absl::Status CheckpointOptions::Fill(pb::CheckpointRef* ref) const {
  ASSIGN_OR_RETURN(const int64_t one_step, ParseOneStep(step));
  address.Fill(ref->mutable_model());
  ref->set_step(one_step);
  return absl::OkStatus();
}

void CheckpointTextOptions::AddTo(CLI::App& app) {
  checkpoint.AddTo(app);
  app.add_option("--text", text)->required();
}

void StepsOption::AddTo(CLI::App& app, const std::string& description) {
  app.add_option("--steps", text, description)->capture_default_str();
}

absl::StatusOr<pb::StepSelection> StepsOption::Selection() const {
  ASSIGN_OR_RETURN(const StepSpec spec, StepSpec::Parse(text));
  pb::StepSelection selection;
  switch (spec.kind) {
    case StepSpec::Kind::kAll:
      selection.set_all(true);
      break;
    case StepSpec::Kind::kList:
      for (int64_t s : spec.list) selection.mutable_list()->add_steps(s);
      break;
    case StepSpec::Kind::kRange:
      selection.mutable_range()->set_first(spec.first);
      selection.mutable_range()->set_last(spec.last);
      break;
  }
  return selection;
}

void ModelStepsOptions::AddTo(CLI::App& app,
                              const std::string& steps_description) {
  address.AddTo(app);
  steps.AddTo(app, steps_description);
}

void TensorOption::AddTo(CLI::App& app) {
  app.add_option("--tensor", name)->capture_default_str();
}

void FormatOption::AddTo(CLI::App& app, const std::vector<std::string>& choices,
                         const std::string& default_name,
                         const std::string& description) {
  name = default_name;
  app.add_option("--format", name, description)
      ->check(CLI::IsMember(choices))
      ->capture_default_str();
}

void ProgressOption::AddTo(CLI::App& app) {
  app.add_flag("--no-progress", disabled, "no progress bar on stderr");
}

bool ProgressOption::Enabled() const {
  return !disabled && isatty(STDERR_FILENO);
}

void ExcludeFlaggedOption::AddTo(CLI::App& app) {
  app.add_flag("--exclude-flagged", exclude, "leave out steps the audit flags");
}

void FigureOptions::AddTo(CLI::App& app) {
  app.add_option("--plot", plot, "draw the figure to FILE.png or FILE.svg");
  app.add_option("--compare", compare,
                 "more models, one row each: [SUITE/]SIZE[:VARIANT][@RUN], "
                 "e.g. 160m@seed3 (repeatable)");
}

absl::StatusOr<std::vector<NamedModel>> FigureOptions::Models(
    const AddressOptions& address) const {
  std::vector<AddressOptions> addresses = {address};
  for (const std::string& text : compare) {
    addresses.push_back(CompareAddress(address, text));
  }
  std::vector<NamedModel> models;
  for (const AddressOptions& a : addresses) {
    ASSIGN_OR_RETURN(const ModelKey key, a.Key());
    NamedModel& m = models.emplace_back();
    a.Fill(&m.ref);
    m.name = key.Name();
  }
  if (drawing()) RETURN_IF_ERROR(plot::CheckWritable(plot));
  return models;
}

absl::Status FigureOptions::Draw(
    absl::FunctionRef<plot::Figure()> figure) const {
  if (!drawing()) return absl::OkStatus();
  return plot::Render(figure(), plot);
}

std::string ModelName(const AddressOptions& address) {
  auto key = address.Key();
  return key.ok() ? key->Name() : address.size;
}

void PlotOption::AddTo(CLI::App& app, const std::string& what) {
  app.add_option("--plot", path, absl::StrCat("draw ", what, " to FILE.png or FILE.svg"));
}

absl::Status PlotOption::Check() const {
  return drawing() ? plot::CheckWritable(path) : absl::OkStatus();
}

void DatasetOption::AddTo(CLI::App& app) {
  app.add_option("--dataset", name, "a dataset name the server registered (garden datasets)")
      ->required();
  app.add_option("--limit", limit, "score the first N examples (default: all)");
}

}  // namespace garden::client

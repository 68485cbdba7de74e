// The matrices themselves (see commands.h): `matrix`, a rectangle of one
// tensor at one or more steps, as numbers or as Figure 1 B's image; and
// `layers`, every matrix's statistics and spectrum at each step.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/commands/commands.h"
#include "client/output/layers.h"
#include "client/output/matrix.h"
#include "client/plot/figures.h"
#include "common/naming/names.h"
#include "common/naming/step_spec.h"
#include "re2/re2.h"

namespace garden::client {
namespace {

// "A:B" (B may be left out: to the end) as a half-open range; {0, 0} for "".
absl::StatusOr<std::pair<int64_t, int64_t>> ParseSpan(const std::string& flag,
                                                      const std::string& text) {
  if (text.empty()) return std::make_pair(int64_t{0}, int64_t{0});
  const size_t colon = text.find(':');
  int64_t begin = 0, end = 0;
  const bool ok = colon != std::string::npos &&
                  absl::SimpleAtoi(text.substr(0, colon), &begin) && begin >= 0 &&
                  (colon + 1 == text.size() ||
                   (absl::SimpleAtoi(text.substr(colon + 1), &end) && end > begin));
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " \"", text, "\" is not BEGIN:END (0 <= BEGIN < END) or BEGIN:"));
  }
  return std::make_pair(begin, end);
}

class Matrix : public Command {
 public:
  Matrix()
      : Command("matrix",
                "a rectangle of a tensor's values at one or more steps "
                "(--plot: Figure 1 B's image)") {}

  absl::Status Run(Connection& connection) override {
    ASSIGN_OR_RETURN(const std::vector<int64_t> steps, Steps());
    ASSIGN_OR_RETURN(const auto rows, ParseSpan("--rows", rows_));
    ASSIGN_OR_RETURN(const auto cols, ParseSpan("--cols", cols_));
    ASSIGN_OR_RETURN(const ModelKey key, address_.Key());
    RETURN_IF_ERROR(plot_.Check());
    MatrixResult result;
    result.model = key.Name();
    result.tensor = tensor_.name;
    for (const int64_t step : steps) {
      pb::MatrixRequest request;
      address_.Fill(request.mutable_checkpoint()->mutable_model());
      request.mutable_checkpoint()->set_step(step);
      request.set_tensor(tensor_.name);
      request.set_row_begin(rows.first);
      request.set_row_end(rows.second);
      request.set_col_begin(cols.first);
      request.set_col_end(cols.second);
      MatrixAtStep& at = result.steps.emplace_back();
      at.step = step;
      RETURN_IF_ERROR(connection.Stream(&Stub::StreamMatrix, request)
                          .ReadAll([&](const pb::MatrixBlock& block) {
                            if (block.shape_size() > 0) {
                              result.shape.assign(block.shape().begin(), block.shape().end());
                              result.dtype = block.dtype();
                              result.row_begin = block.row_begin();
                              result.row_end = block.row_end();
                              result.col_begin = block.col_begin();
                              result.col_end = block.col_end();
                            }
                            at.values.insert(at.values.end(), block.values().begin(),
                                             block.values().end());
                          }));
    }
    RenderMatrix(result, format_.format(), std::cout);
    if (!plot_.drawing()) return absl::OkStatus();
    std::vector<MatrixPanel> panels;
    for (const MatrixAtStep& at : result.steps) {
      panels.push_back({.title = absl::StrCat("step ", at.step),
                        .row_begin = result.row_begin,
                        .col_begin = result.col_begin,
                        .rows = result.row_end - result.row_begin,
                        .cols = result.col_end - result.col_begin,
                        .values = at.values});
    }
    return plot::Render(
        MatrixFigure(panels, absl::StrCat(result.model, " ", result.tensor)), plot_.path);
  }

 private:
  void AddOptions(CLI::App& command) override {
    address_.AddTo(command);
    command.add_option("--step", step_, "one training step");
    command.add_option("--steps", steps_,
                       "several steps, comma-separated (e.g. 0,143000): one "
                       "panel each, sharing one colour scale");
    tensor_.AddTo(command);
    command.add_option("--rows", rows_, "rows BEGIN:END (END left out: to the last; default all)");
    command.add_option("--cols", cols_, "columns BEGIN:END (default all)");
    plot_.AddTo(command, "the image");
    format_.AddTo(command, {"json", "csv"}, "json");
  }

  // --step or --steps, exactly one of them.
  absl::StatusOr<std::vector<int64_t>> Steps() const {
    if (step_.empty() == steps_.empty()) {
      return absl::InvalidArgumentError("give --step N or --steps A,B,... (one of them)");
    }
    if (!step_.empty()) {
      ASSIGN_OR_RETURN(const StepSpec one, StepSpec::Parse(step_));
      if (one.kind != StepSpec::Kind::kList || one.list.size() != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("--step takes one step, got \"", step_, "\""));
      }
      return one.list;
    }
    ASSIGN_OR_RETURN(const StepSpec list, StepSpec::Parse(steps_));
    if (list.kind != StepSpec::Kind::kList) {
      return absl::InvalidArgumentError(
          absl::StrCat("--steps takes a list of steps here (A,B,...), got \"", steps_, "\""));
    }
    return list.list;
  }

  AddressOptions address_;
  std::string step_, steps_, rows_, cols_;
  TensorOption tensor_;
  PlotOption plot_;
};

class Layers : public Command {
 public:
  Layers()
      : Command("layers",
                "per step and per matrix: moments, norms, sparsity and spectra "
                "(power-law alpha, stable and effective rank)") {}

  absl::Status Run(Connection& connection) override {
    pb::LayerStatsRequest request;
    RETURN_IF_ERROR(model_steps_.Fill(&request));
    request.set_tensors(tensors_);
    request.set_spectrum(spectrum_);
    if (!esd_.empty()) {
      if (!tensors_.empty()) {
        return absl::InvalidArgumentError("--esd names its tensor: give --esd or --tensors");
      }
      request.set_tensors(absl::StrCat("^", RE2::QuoteMeta(esd_), "$"));
      request.set_eigenvalues(true);
    }
    std::vector<std::string> metrics = AllLayerMetrics();
    if (!metrics_.empty()) {
      metrics.clear();
      for (absl::string_view m : absl::StrSplit(metrics_, ',', absl::SkipEmpty())) {
        metrics.emplace_back(m);
        request.add_metrics(std::string(m));
      }
    }
    if (plot_.drawing() && esd_.empty()) {
      if (std::find(metrics.begin(), metrics.end(), plot_metric_) == metrics.end() ||
          plot_metric_ == "sparsity") {
        return absl::InvalidArgumentError(absl::StrCat(
            "--plot-metric ", plot_metric_, " must be one of the metrics asked for, "
            "and a number (not sparsity)"));
      }
    }
    RETURN_IF_ERROR(plot_.Check());
    ASSIGN_OR_RETURN(const std::vector<NamedModel> models, figure_.Models(model_steps_.address));
    LayersRenderer renderer(format_.format(), metrics, std::cout);
    std::vector<LayerSeries> series;
    std::vector<EsdAtStep> esd_steps;  // --esd: the main model's
    for (const NamedModel& model : models) {
      *request.mutable_model() = model.ref;
      LayerSeries& one = series.emplace_back();
      one.model = model.name;
      RETURN_IF_ERROR(connection.Stream(&Stub::StreamLayerStats, request)
                          .ReadAll([&](const pb::LayerStatsRecord& record) {
                            renderer.Record(record, models.size() > 1 ? model.name : "");
                            if (!esd_.empty() && &model == &models.front()) {
                              EsdAtStep& at = esd_steps.emplace_back();
                              at.step = record.step();
                              at.eigenvalues.assign(record.eigenvalues().begin(),
                                                    record.eigenvalues().end());
                              if (record.has_alpha()) at.alpha = record.alpha();
                              if (record.has_xmin()) at.xmin = record.xmin();
                            }
                            if (const std::optional<double> v = PlotValue(record)) {
                              one.values.push_back({.step = record.step(),
                                                    .layer = record.layer(),
                                                    .kind = record.kind(),
                                                    .value = *v});
                            }
                          }));
    }
    if (!plot_.drawing()) return absl::OkStatus();
    if (!esd_.empty()) {
      return plot::Render(EsdFigure(esd_steps, absl::StrCat(series.front().model, " ", esd_)),
                          plot_.path);
    }
    return plot::Render(LayersFigure(series, plot_metric_), plot_.path);
  }

 private:
  void AddOptions(CLI::App& command) override {
    model_steps_.AddTo(command);
    command.add_option("--tensors", tensors_,
                       "a regular expression (RE2) matched anywhere in the tensor names "
                       "(default: every 2-D weight)");
    command.add_option("--metrics", metrics_,
                       "comma-separated, of: n, mean, std, rms, max_abs, frobenius, sparsity, "
                       "spectral_norm, stable_rank, effective_rank, alpha, alpha_weighted, "
                       "ks_distance, xmin, num_spikes (default all)");
    command
        .add_option("--spectrum", spectrum_,
                    "auto: LAPACK's SVD up to 65536 entries, the Gram matrix's eigenvalues "
                    "above; exact: the SVD always (RESOURCE_EXHAUSTED past 4194304 entries)")
        ->check(CLI::IsMember({"auto", "exact"}))
        ->capture_default_str();
    format_.AddTo(command, {"jsonl", "csv", "table"}, "jsonl");
    plot_.AddTo(command,
                "--plot-metric as a heatmap, layers x steps, a panel per matrix kind (a row "
                "per --compare model),");
    command.add_option("--plot-metric", plot_metric_, "the metric --plot draws")
        ->capture_default_str();
    command.add_option("--esd", esd_,
                       "one tensor (its exact name): also print its eigenvalues, and --plot "
                       "draws its empirical spectral density at each step with the fitted "
                       "power law");
    command.add_option("--compare", figure_.compare,
                       "more models, one row each: [SUITE/]SIZE[:VARIANT][@RUN]");
  }

  // The record's --plot-metric, if it has it.
  std::optional<double> PlotValue(const pb::LayerStatsRecord& r) const {
    const google::protobuf::Reflection* reflection = r.GetReflection();
    const google::protobuf::FieldDescriptor* field =
        r.GetDescriptor()->FindFieldByName(plot_metric_);
    if (field == nullptr || !reflection->HasField(r, field)) return std::nullopt;
    if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE) {
      return reflection->GetDouble(r, field);
    }
    if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_UINT64) {
      return static_cast<double>(reflection->GetUInt64(r, field));
    }
    return std::nullopt;
  }

  ModelStepsOptions model_steps_;
  std::string tensors_, metrics_, plot_metric_ = "alpha", esd_, spectrum_ = "auto";
  PlotOption plot_;
  FigureOptions figure_;  // --compare only; --plot is plot_
};

}  // namespace

Commands ValuesCommands() { return MakeCommands<Matrix, Layers>(); }

}  // namespace garden::client

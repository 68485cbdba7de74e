// The option groups the garden commands share, each with the flags it adds
// and the request fields it fills, and the loops of the commands that read
// a stream with a progress bar (ProgressOption::ReadAll) or one stream per
// model for a figure (FigureOptions::Sweep). Defaults come from
// common/naming/names.h and common/stats/analysis_defaults.h, where the
// server takes them from.
#ifndef GARDEN_CLIENT_COMMANDS_OPTIONS_H_
#define GARDEN_CLIENT_COMMANDS_OPTIONS_H_

#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/commands/connection.h"
#include "client/output/format.h"
#include "client/output/progress.h"
#include "client/plot/figures.h"
#include "client/plot/plot.h"
#include "common/base/status.h"
#include "common/naming/names.h"
#include "garden/v1/garden.pb.h"

namespace garden::client {

// --suite, --size (required), --variant: one model.
struct AddressOptions {
  std::string suite = std::string(kDefaultSuite);
  std::string size;
  std::string variant = "standard";
  std::string run;  // "" for the main run

  void AddTo(CLI::App& app);
  void Fill(garden::v1::ModelRef* ref) const;
  // The canonical model (MakeModelKey's INVALID_ARGUMENT).
  absl::StatusOr<ModelKey> Key() const;
};

// The address and --step (required): one checkpoint.
struct CheckpointOptions {
  AddressOptions address;
  std::string step;

  void AddTo(CLI::App& app);
  // INVALID_ARGUMENT unless --step names exactly one step.
  absl::Status Fill(garden::v1::CheckpointRef* ref) const;
};

// The checkpoint and --text (required): the input of tokenize, logits and
// attention.
struct CheckpointTextOptions {
  CheckpointOptions checkpoint;
  std::string text;

  void AddTo(CLI::App& app);
  // Sets both in `request` (a request with a checkpoint and a text).
  template <typename Request>
  absl::Status Fill(Request* request) const {
    RETURN_IF_ERROR(checkpoint.Fill(request->mutable_checkpoint()));
    request->set_text(text);
    return absl::OkStatus();
  }
};

// --steps: all, a list 0,1,2,512 or a range 1000:5000.
struct StepsOption {
  std::string text = "all";

  void AddTo(CLI::App& app, const std::string& description = "");
  // INVALID_ARGUMENT, as StepSpec::Parse words it, for malformed text.
  absl::StatusOr<garden::v1::StepSelection> Selection() const;
};

// The address and --steps: one model at a selection of its steps.
struct ModelStepsOptions {
  AddressOptions address;
  StepsOption steps;

  void AddTo(CLI::App& app, const std::string& steps_description = "");
  // Sets the model and the steps of `request`; INVALID_ARGUMENT as
  // StepsOption::Selection.
  template <typename Request>
  absl::Status Fill(Request* request) const {
    address.Fill(request->mutable_model());
    ASSIGN_OR_RETURN(*request->mutable_steps(), steps.Selection());
    return absl::OkStatus();
  }
};

// --tensor, default the unembedding matrix.
struct TensorOption {
  std::string name = std::string(kDefaultTensor);

  void AddTo(CLI::App& app);
};

// --format, one of the command's `choices`.
struct FormatOption {
  std::string name;

  void AddTo(CLI::App& app, const std::vector<std::string>& choices,
             const std::string& default_name,
             const std::string& description = "");
  Format format() const { return FormatFromName(name); }
};

// "pythia-70m-deduped", or the size as given when it is not a valid name
// (the server says why): how figures title a model.
std::string ModelName(const AddressOptions& address);

// --plot FILE.png|.svg for the commands that draw one model's figure,
// checked (Check) before any RPC.
struct PlotOption {
  std::string path;

  // "--plot: draw <what> to FILE.png or FILE.svg".
  void AddTo(CLI::App& app, const std::string& what);
  bool drawing() const { return !path.empty(); }
  // plot::CheckWritable's errors; OK without --plot.
  absl::Status Check() const;
};

// --dataset (required) and --limit: what ppl and prune score.
struct DatasetOption {
  std::string name;
  std::optional<int64_t> limit;

  void AddTo(CLI::App& app);
  // Sets both in `request` (a request with dataset and an optional limit).
  template <typename Request>
  void Fill(Request* request) const {
    request->set_dataset(name);
    if (limit) request->set_limit(*limit);
  }
};

// --no-progress, for the commands that can draw a progress bar.
struct ProgressOption {
  bool disabled = false;

  void AddTo(CLI::App& app);
  // Whether to draw the bar: not disabled, and stderr is a terminal.
  bool Enabled() const;

  // Reads `stream`, whose messages carry either progress, drawn as a bar
  // labelled `label` (when Enabled()), or a result, handed to
  // handle(message, bar) once the bar is erased. The bar is gone before the
  // stream's status is returned.
  template <typename Message, typename Handle>
  absl::Status ReadAll(ServerStream<Message> stream, const std::string& label,
                       Handle handle) const {
    ProgressBar bar(Enabled());
    Message message;
    while (stream.Read(&message)) {
      if (message.has_progress()) {
        const auto& progress = message.progress();
        bar.Update(progress.done(), progress.total(),
                   label + TransferLabel(progress.bytes_received(),
                                         progress.bytes_expected()));
        continue;
      }
      bar.Clear();
      handle(message, bar);
    }
    bar.Clear();
    return stream.Finish();
  }
};

// --exclude-flagged, for the sweeps that can leave out what the audit flags.
struct ExcludeFlaggedOption {
  bool exclude = false;

  void AddTo(CLI::App& app);
};

// A model to run and the name its rows and figure panels carry.
struct NamedModel {
  garden::v1::ModelRef ref;
  std::string name;  // "pythia-70m-deduped"
};

// --plot FILE and --compare MODEL... (hist, msd, ppl).
struct FigureOptions {
  std::string plot;
  std::vector<std::string> compare;

  void AddTo(CLI::App& app);
  bool drawing() const { return !plot.empty(); }
  // The main model, then each --compare one ([SUITE/]SIZE[:VARIANT][@RUN],
  // the rest taken from `address`; "@" alone: the main run), once every name
  // is valid and the plot path writable: a bad one fails before any RPC.
  absl::StatusOr<std::vector<NamedModel>> Models(
      const AddressOptions& address) const;
  // Whether --compare adds models (renderers then name the model).
  bool comparing() const { return !compare.empty(); }

  // What hist, msd and ppl do: checks the models (Models()), then builds the
  // request with make_request() (everything but the model), then for each
  // model in turn sets it in the request and has stream(request, series)
  // fill a series named after it. The series, one per model, for the
  // figure; the first error stops.
  template <typename MakeRequest, typename Stream>
  absl::StatusOr<std::vector<ModelSeries>> Sweep(const AddressOptions& address,
                                                 MakeRequest make_request,
                                                 Stream stream) const {
    ASSIGN_OR_RETURN(const std::vector<NamedModel> models, Models(address));
    ASSIGN_OR_RETURN(auto request, make_request());
    std::vector<ModelSeries> figure;
    for (const NamedModel& model : models) {
      *request.mutable_model() = model.ref;
      ModelSeries& series = figure.emplace_back();
      series.model = model.name;
      RETURN_IF_ERROR(stream(request, series));
    }
    return figure;
  }

  // With --plot, renders figure() to it; without, nothing.
  absl::Status Draw(absl::FunctionRef<plot::Figure()> figure) const;
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_OPTIONS_H_

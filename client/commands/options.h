// The option groups the garden commands share, each with the flags it adds
// and the request fields it fills. Defaults come from common/naming/names.h
// and common/stats/analysis_defaults.h, where the server takes them from.
#ifndef GARDEN_CLIENT_COMMANDS_OPTIONS_H_
#define GARDEN_CLIENT_COMMANDS_OPTIONS_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/output/format.h"
#include "client/plot/plot.h"
#include "common/naming/names.h"
#include "garden/v1/garden.pb.h"

namespace garden::client {

// --suite, --size (required), --variant: one model.
struct AddressOptions {
  std::string suite = std::string(kDefaultSuite);
  std::string size;
  std::string variant = "standard";

  void AddTo(CLI::App& app);
  void Fill(garden::v1::ModelRef* ref) const;
};

// The address and --step (required): one checkpoint.
struct CheckpointOptions {
  AddressOptions address;
  std::string step;

  void AddTo(CLI::App& app);
  // INVALID_ARGUMENT unless --step names exactly one step.
  absl::Status Fill(garden::v1::CheckpointRef* ref) const;
};

// --steps: all, a list 0,1,2,512 or a range 1000:5000.
struct StepsOption {
  std::string text = "all";

  void AddTo(CLI::App& app, const std::string& description = "");
  // INVALID_ARGUMENT, as StepSpec::Parse words it, for malformed text.
  absl::StatusOr<garden::v1::StepSelection> Selection() const;
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

// --no-progress, for the commands that can draw a progress bar.
struct ProgressOption {
  bool disabled = false;

  void AddTo(CLI::App& app);
  // Whether to draw the bar: not disabled, and stderr is a terminal.
  bool Enabled() const;
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
  // The main model, then each --compare one (SIZE[:VARIANT] or
  // SUITE/SIZE[:VARIANT], the rest taken from `address`), once every name
  // is valid and the plot path writable: a bad one fails before any RPC.
  absl::StatusOr<std::vector<NamedModel>> Models(
      const AddressOptions& address) const;
  // Renders `figure` to --plot.
  absl::Status Draw(const plot::Figure& figure) const;
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_OPTIONS_H_

// What the server holds: models, tensors, datasets (see commands.h).
#include "client/output/catalog.h"

#include <string>

#include "client/commands/commands.h"

namespace garden::client {
namespace {

class Models : public Command {
 public:
  Models() : Command("models", "list suites, sizes, variants and steps") {}

  absl::Status Run(Connection& connection) override {
    pb::ListModelsRequest request;
    request.set_suite(suite_);
    return CallAndRender(connection, &Stub::ListModels, request, RenderModels);
  }

 private:
  void AddOptions(CLI::App& command) override {
    format_.AddTo(command, {"json", "table"}, "table");
    command.add_option("--suite", suite_, "only this suite");
  }

  std::string suite_;
};

class Tensors : public Command {
 public:
  Tensors() : Command("tensors", "list the tensors of one checkpoint") {}

  absl::Status Run(Connection& connection) override {
    pb::ListTensorsRequest request;
    RETURN_IF_ERROR(checkpoint_.Fill(request.mutable_checkpoint()));
    return CallAndRender(connection, &Stub::ListTensors, request,
                         RenderTensors);
  }

 private:
  void AddOptions(CLI::App& command) override {
    checkpoint_.AddTo(command);
    format_.AddTo(command, {"json", "table"}, "table");
  }

  CheckpointOptions checkpoint_;
};

class Datasets : public Command {
 public:
  Datasets() : Command("datasets", "evaluation datasets the server holds") {}

  absl::Status Run(Connection& connection) override {
    return CallAndRender(connection, &Stub::ListDatasets,
                         pb::ListDatasetsRequest(), RenderDatasets);
  }

 private:
  void AddOptions(CLI::App& command) override {
    format_.AddTo(command, {"json", "table"}, "table");
  }
};

}  // namespace

Commands CatalogCommands() { return MakeCommands<Models, Tensors, Datasets>(); }

}  // namespace garden::client

#include "client/commands/catalog.h"

#include <iostream>
#include <string>

#include "client/commands/options.h"
#include "client/output/catalog.h"
#include "common/base/status.h"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;
using Stub = Connection::Stub;

class Models : public Command {
 public:
  void Register(CLI::App& app) override {
    subcommand_ =
        app.add_subcommand("models", "list suites, sizes, variants and steps");
    format_.AddTo(*subcommand_, {"json", "table"}, "table");
    subcommand_->add_option("--suite", suite_, "only this suite");
  }

  absl::Status Run(Connection& connection) override {
    pb::ListModelsRequest request;
    request.set_suite(suite_);
    pb::ListModelsResponse response;
    RETURN_IF_ERROR(connection.Call(&Stub::ListModels, request, &response));
    RenderModels(response, format_.format(), std::cout);
    return absl::OkStatus();
  }

 private:
  FormatOption format_;
  std::string suite_;
};

class Tensors : public Command {
 public:
  void Register(CLI::App& app) override {
    subcommand_ =
        app.add_subcommand("tensors", "list the tensors of one checkpoint");
    checkpoint_.AddTo(*subcommand_);
    format_.AddTo(*subcommand_, {"json", "table"}, "table");
  }

  absl::Status Run(Connection& connection) override {
    pb::ListTensorsRequest request;
    RETURN_IF_ERROR(checkpoint_.Fill(request.mutable_checkpoint()));
    pb::ListTensorsResponse response;
    RETURN_IF_ERROR(connection.Call(&Stub::ListTensors, request, &response));
    RenderTensors(response, format_.format(), std::cout);
    return absl::OkStatus();
  }

 private:
  CheckpointOptions checkpoint_;
  FormatOption format_;
};

class Datasets : public Command {
 public:
  void Register(CLI::App& app) override {
    subcommand_ = app.add_subcommand("datasets",
                                     "evaluation datasets the server holds");
    format_.AddTo(*subcommand_, {"json", "table"}, "table");
  }

  absl::Status Run(Connection& connection) override {
    pb::ListDatasetsResponse response;
    RETURN_IF_ERROR(connection.Call(&Stub::ListDatasets,
                                    pb::ListDatasetsRequest(), &response));
    RenderDatasets(response, format_.format(), std::cout);
    return absl::OkStatus();
  }

 private:
  FormatOption format_;
};

}  // namespace

std::unique_ptr<Command> ModelsCommand() { return std::make_unique<Models>(); }
std::unique_ptr<Command> TensorsCommand() {
  return std::make_unique<Tensors>();
}
std::unique_ptr<Command> DatasetsCommand() {
  return std::make_unique<Datasets>();
}

}  // namespace garden::client

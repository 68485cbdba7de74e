// One garden subcommand: its name, description and options, registered with
// CLI11, and Run(), which builds the request, calls gardend and hands the
// response to a renderer (client/output) writing to stdout. Every command
// has --format (format_); each places it among its options itself, as its
// --help lists them.
//
// The subclasses live in client/commands/<family>.cc; commands.h lists
// them. CallAndRender below is the Run() of the commands that make one
// unary RPC; ServerStream::ReadAll (connection.h), ProgressOption::ReadAll
// and FigureOptions::Sweep (options.h) are the loops of the streaming ones.
#ifndef GARDEN_CLIENT_COMMANDS_COMMAND_H_
#define GARDEN_CLIENT_COMMANDS_COMMAND_H_

#include <iostream>
#include <string>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "client/commands/connection.h"
#include "client/commands/options.h"
#include "common/base/status.h"

namespace garden::client {

// The commands' name for the protocol's messages (Stub, for its methods, is
// connection.h's).
namespace pb = ::garden::v1;

class Command {
 public:
  virtual ~Command() = default;
  Command(const Command&) = delete;
  Command& operator=(const Command&) = delete;

  // Adds the subcommand with its description and options to `app`.
  void Register(CLI::App& app) {
    subcommand_ = app.add_subcommand(name_, description_);
    AddOptions(*subcommand_);
  }

  // "models", "hist", ...: what `garden NAME` runs.
  const std::string& name() const { return name_; }

  // After parsing: whether the command line chose this subcommand.
  bool Chosen() const {
    return subcommand_ != nullptr && subcommand_->parsed();
  }

  // Runs the chosen command. An error is printed by main as
  // "garden: CODE: message" (exit 1); whatever was printed before stays.
  virtual absl::Status Run(Connection& connection) = 0;

 protected:
  Command(std::string name, std::string description)
      : name_(std::move(name)), description_(std::move(description)) {}

  // Adds the command's options to its subcommand, in --help order.
  virtual void AddOptions(CLI::App& command) = 0;

  // After parsing: whether the command line gave `option` ("--seed").
  bool Given(const std::string& option) const {
    return subcommand_->count(option) > 0;
  }

  // Makes the unary RPC `method` with `request` and renders the response on
  // stdout with render(response, format, out).
  template <typename Request, typename Response, typename Render>
  absl::Status CallAndRender(Connection& connection,
                             UnaryMethod<Request, Response> method,
                             const Request& request, Render render) const {
    Response response;
    RETURN_IF_ERROR(connection.Call(method, request, &response));
    render(response, format_.format(), std::cout);
    return absl::OkStatus();
  }

  FormatOption format_;

 private:
  std::string name_;
  std::string description_;
  CLI::App* subcommand_ = nullptr;  // set by Register
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_COMMAND_H_

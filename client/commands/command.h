// One garden subcommand: its options, how it registers them with CLI11, and
// Run(), which builds the request, calls gardend and hands the response to
// a renderer (client/output) writing to stdout.
#ifndef GARDEN_CLIENT_COMMANDS_COMMAND_H_
#define GARDEN_CLIENT_COMMANDS_COMMAND_H_

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "client/commands/connection.h"

namespace garden::client {

class Command {
 public:
  virtual ~Command() = default;

  // Adds the subcommand with its description and options to `app`.
  virtual void Register(CLI::App& app) = 0;

  // After parsing: whether the command line chose this subcommand.
  bool Chosen() const { return subcommand_ != nullptr && subcommand_->parsed(); }

  // Runs the chosen command. An error is printed by main as
  // "garden: CODE: message" (exit 1); whatever was printed before stays.
  virtual absl::Status Run(Connection& connection) = 0;

 protected:
  CLI::App* subcommand_ = nullptr;  // set by Register
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_COMMAND_H_

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
// Each subcommand lives in client/commands/, its output in client/output/.
// Errors print "garden: CODE: message" on stderr and exit 1 (2 for usage).
#include <cstdlib>

#include "CLI/CLI.hpp"
#include "client/commands/commands.h"
#include "client/commands/connection.h"
#include "grpc/support/log.h"

int main(int argc, char** argv) {
  namespace client = ::garden::client;
  // gRPC's own log lines (a failed TLS handshake, say) repeat what the
  // status line says; GRPC_VERBOSITY brings them back for debugging.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) {
    gpr_set_log_function([](gpr_log_func_args*) {});
  }
  CLI::App app{
      "garden: ask gardend how a model's parameters change over training"};
  app.require_subcommand(1);
  // The global options may also follow the command: `garden ui --server X`.
  app.fallthrough();
  client::Connection connection;
  connection.AddTo(app);

  client::Commands commands = client::AllCommands();
  for (auto& command : commands) command->Register(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (const absl::Status ready = connection.Prepare(); !ready.ok()) {
    return client::Fail(ready);
  }
  for (auto& command : commands) {
    if (!command->Chosen()) continue;
    const absl::Status status = command->Run(connection);
    return status.ok() ? 0 : client::Fail(status);
  }
  return 2;  // unreachable: parsing requires one subcommand
}

// The browser dashboard (see commands.h): ui.
#include <string>

#include "client/commands/commands.h"
#include "client/ui/ui_server.h"

namespace garden::client {
namespace {

class Ui : public Command {
 public:
  Ui()
      : Command("ui",
                "serve the dashboard on this machine: a web page that asks "
                "gardend (--server) and draws the paper's figures") {}

  absl::Status Run(Connection& connection) override {
    return ServeUi(options_, connection);
  }

 private:
  void AddOptions(CLI::App& command) override {
    command.add_option("--listen", options_.listen,
                       "HOST:PORT the page is served on (port 0: any free one)")
        ->capture_default_str();
    command.add_flag("--allow-remote", options_.allow_remote,
                     "also serve a --listen address other machines reach "
                     "(they act with your token)");
    command.add_option("--assets", options_.assets_dir,
                       "the page's files (default: the ui folder beside "
                       "garden's bin folder)");
    command.add_option("--port-file", options_.port_file,
                       "write the port here once listening");
  }

  UiOptions options_;
};

}  // namespace

Commands UiCommands() { return MakeCommands<Ui>(); }

}  // namespace garden::client

// The server itself and access to it (see commands.h): health, token.
#include "client/output/service.h"

#include <iostream>
#include <string>

#include "client/commands/commands.h"
#include "common/auth/token_table.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace garden::client {
namespace {

namespace health = ::grpc::health::v1;

class Health : public Command {
 public:
  Health()
      : Command("health",
                "ask the standard health service whether the server is "
                "serving (exit 0 when SERVING)") {}

  absl::Status Run(Connection& connection) override {
    health::HealthCheckRequest request;
    request.set_service(service_);
    health::HealthCheckResponse response;
    std::unique_ptr<grpc::ClientContext> context = connection.NewContext();
    RETURN_IF_ERROR(FromGrpc(health::Health::NewStub(connection.channel())
                                 ->Check(context.get(), request, &response)));
    RenderHealth(response, format_.format(), std::cout);
    if (response.status() != health::HealthCheckResponse::SERVING) {
      return absl::UnavailableError(absl::StrCat(
          "the server is ",
          health::HealthCheckResponse::ServingStatus_Name(response.status()),
          response.status() == health::HealthCheckResponse::NOT_SERVING
              ? " (stopping)"
              : ""));
    }
    return absl::OkStatus();
  }

 private:
  void AddOptions(CLI::App& command) override {
    format_.AddTo(command, {"json", "table"}, "table");
    command.add_option("--service", service_,
                       "a service's full name (default: the whole server)");
  }

  std::string service_;
};

class Token : public Command {
 public:
  Token()
      : Command("token",
                "make an access token for a server started with "
                "--auth-tokens") {}

  absl::Status Run(Connection&) override {
    ASSIGN_OR_RETURN(const NewToken made, MakeToken(name_));
    RenderNewToken(name_, made.token, made.line, format_.format(), std::cout);
    std::cerr << "garden: the first line is " << name_
              << "'s token: keep it secret (a file only they can read, for "
                 "`garden --token-file F`); add the second line to gardend's "
                 "--auth-tokens file, then send gardend SIGHUP\n";
    return absl::OkStatus();
  }

 private:
  void AddOptions(CLI::App& command) override {
    command.require_subcommand(1);
    CLI::App* make = command.add_subcommand(
        "new", "print a fresh token and the line that admits it");
    make->add_option("NAME", name_,
                     "whose token: 1-64 of [A-Za-z0-9._@-], as the server "
                     "logs it")
        ->required();
    format_.AddTo(*make, {"json", "table"}, "table");
  }

  std::string name_;
};

}  // namespace

Commands ServiceCommands() { return MakeCommands<Health, Token>(); }

}  // namespace garden::client

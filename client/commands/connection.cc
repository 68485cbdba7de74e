#include "client/commands/connection.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>

namespace garden::client {

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

int Fail(const absl::Status& status) {
  std::cerr << "garden: " << absl::StatusCodeToString(status.code()) << ": "
            << status.message() << std::endl;
  return 1;
}

void Connection::AddTo(CLI::App& app) {
  const char* env_server = std::getenv("GARDEN_SERVER");
  server_ = env_server ? env_server : "127.0.0.1:50051";
  app.add_option("--server", server_, "gardend address (env GARDEN_SERVER)")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s_, "deadline in seconds (0: none)");
}

Connection::Stub& Connection::stub() {
  if (stub_ == nullptr) {
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(64 << 20);  // attention matrices
    stub_ = garden::v1::Garden::NewStub(grpc::CreateCustomChannel(
        server_, grpc::InsecureChannelCredentials(), channel_args));
  }
  return *stub_;
}

std::unique_ptr<grpc::ClientContext> Connection::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (timeout_s_ > 0) {
    context->set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(timeout_s_ * 1000)));
  }
  return context;
}

}  // namespace garden::client

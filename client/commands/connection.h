// How a garden command reaches gardend: the global --server and --timeout
// options, one channel, a fresh ClientContext (with the deadline) per RPC,
// and gRPC statuses as absl::Status for the error line main prints.
//
//   pb::ListModelsResponse response;
//   RETURN_IF_ERROR(connection.Call(&Stub::ListModels, request,
//                                   &response));
//   auto stream = connection.Stream(&Stub::StreamMSD, request);
//   RETURN_IF_ERROR(stream.ReadAll([&](const pb::StreamMSDResponse& m) {...}));
#ifndef GARDEN_CLIENT_COMMANDS_CONNECTION_H_
#define GARDEN_CLIENT_COMMANDS_CONNECTION_H_

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "garden/v1/garden.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace garden::client {

// The same code and message.
absl::Status FromGrpc(const grpc::Status& status);

// Prints "garden: CODE: message" on stderr and returns 1, the exit status of
// a command that failed.
int Fail(const absl::Status& status);

// The messages of one server stream; the context lives as long as the
// reader that needs it.
template <typename Message>
class ServerStream {
 public:
  ServerStream(std::unique_ptr<grpc::ClientContext> context,
               std::unique_ptr<grpc::ClientReader<Message>> reader)
      : context_(std::move(context)), reader_(std::move(reader)) {}

  // False once the stream has ended (completely or not: see Finish).
  bool Read(Message* message) { return reader_->Read(message); }
  // The status the stream ended with.
  absl::Status Finish() { return FromGrpc(reader_->Finish()); }

  // Hands every message to handle(message) as it arrives, then Finish().
  template <typename Handle>
  absl::Status ReadAll(Handle handle) {
    Message message;
    while (Read(&message)) handle(message);
    return Finish();
  }

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReader<Message>> reader_;
};

// The generated client of the Garden service.
using Stub = garden::v1::Garden::Stub;

// A unary RPC of the stub, e.g. &Stub::Audit.
template <typename Request, typename Response>
using UnaryMethod = grpc::Status (Stub::*)(grpc::ClientContext*, const Request&,
                                           Response*);

class Connection {
 public:
  using Stub = ::garden::client::Stub;

  // --server (default $GARDEN_SERVER, else 127.0.0.1:50051) and --timeout.
  void AddTo(CLI::App& app);

  // A unary RPC, e.g. Call(&Stub::Audit, request, &response).
  template <typename Request, typename Response>
  absl::Status Call(UnaryMethod<Request, Response> method,
                    const Request& request, Response* response) {
    std::unique_ptr<grpc::ClientContext> context = NewContext();
    return FromGrpc((stub().*method)(context.get(), request, response));
  }

  // A server-streaming RPC, e.g. Stream(&Stub::StreamMSD, request).
  template <typename Request, typename Message>
  ServerStream<Message> Stream(std::unique_ptr<grpc::ClientReader<Message>> (
                                   Stub::*method)(grpc::ClientContext*,
                                                  const Request&),
                               const Request& request) {
    std::unique_ptr<grpc::ClientContext> context = NewContext();
    auto reader = (stub().*method)(context.get(), request);
    return ServerStream<Message>(std::move(context), std::move(reader));
  }

 private:
  // The channel is made on first use, after parsing has set --server.
  Stub& stub();
  // Deadline --timeout seconds from now (none for 0).
  std::unique_ptr<grpc::ClientContext> NewContext() const;

  std::string server_;
  double timeout_s_ = 0;
  std::unique_ptr<Stub> stub_;
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_CONNECTION_H_

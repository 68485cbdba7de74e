// How a garden command reaches gardend: the global options (--server,
// --timeout, and --token-file, --tls-ca, --tls-cert, --tls-key for a shared
// server), one channel, a fresh ClientContext (with the deadline and the
// token) per RPC, and gRPC statuses as absl::Status for the error line main
// prints.
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

// Invalid UTF-8 in every string field of `message` (recursively) replaced
// by U+FFFD, one per maximal invalid sequence, as the tokenizer would:
// protobuf strings must be UTF-8, and a server cannot parse a request that
// breaks the rule. True if anything changed.
bool ReplaceInvalidUtf8Fields(google::protobuf::Message* message);

// A copy of `request` with valid UTF-8 in its strings.
template <typename Request>
Request WithValidUtf8(const Request& request) {
  Request copy = request;
  ReplaceInvalidUtf8Fields(&copy);
  return copy;
}

// "pythia/70m/deduped": the canonical model a request is about (its `model`
// or `checkpoint.model` field), or "" for requests about none.
std::string ModelHeader(const google::protobuf::Message& request);

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

  // The call's context: TryCancel() on it (from any thread) cancels the call.
  grpc::ClientContext& context() { return *context_; }

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

  // --server (default $GARDEN_SERVER, else 127.0.0.1:50051), --timeout,
  // --token-file (default: the token in $GARDEN_TOKEN), --tls-ca, --tls-cert
  // and --tls-key.
  void AddTo(CLI::App& app);

  // After parsing: reads the token and TLS files. INVALID_ARGUMENT,
  // NOT_FOUND or PERMISSION_DENIED naming the flag and the file.
  absl::Status Prepare();

  // What the options chose (after parsing): the server's address, whether
  // the channel uses TLS, and whether calls carry a token.
  const std::string& server() const { return server_; }
  bool uses_tls() const { return !tls_ca_.empty(); }
  bool has_token() const { return !token_.empty(); }

  // The channel every call goes over (made on first use).
  std::shared_ptr<grpc::Channel> channel();

  // A context for one call: the deadline --timeout seconds from now (none
  // for 0), the token, and, for a request about a model, the header
  // `x-garden-model: suite/size/variant[/run]` (canonical) that a proxy in front
  // of several gardend replicas routes by.
  std::unique_ptr<grpc::ClientContext> NewContext(
      const google::protobuf::Message* request = nullptr) const;

  // A unary RPC, e.g. Call(&Stub::Audit, request, &response).
  template <typename Request, typename Response>
  absl::Status Call(UnaryMethod<Request, Response> method,
                    const Request& request, Response* response) {
    std::unique_ptr<grpc::ClientContext> context = NewContext(&request);
    const Request sent = WithValidUtf8(request);
    return FromGrpc((stub().*method)(context.get(), sent, response));
  }

  // A server-streaming RPC, e.g. Stream(&Stub::StreamMSD, request).
  template <typename Request, typename Message>
  ServerStream<Message> Stream(std::unique_ptr<grpc::ClientReader<Message>> (
                                   Stub::*method)(grpc::ClientContext*,
                                                  const Request&),
                               const Request& request) {
    std::unique_ptr<grpc::ClientContext> context = NewContext(&request);
    auto reader = (stub().*method)(context.get(), WithValidUtf8(request));
    return ServerStream<Message>(std::move(context), std::move(reader));
  }

 private:
  // The channel is made on first use, after parsing has set --server.
  Stub& stub();

  std::string server_;
  double timeout_s_ = 0;
  std::string token_file_, tls_ca_, tls_cert_, tls_key_;
  std::string token_;  // from Prepare()
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_COMMANDS_CONNECTION_H_

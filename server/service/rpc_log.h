// One log line per RPC: its outcome, what it was about and how long it took.
#ifndef GARDEN_SERVER_SERVICE_RPC_LOG_H_
#define GARDEN_SERVER_SERVICE_RPC_LOG_H_

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"

namespace garden {

class RpcLog {
 public:
  RpcLog(std::string_view method, grpc::ServerContext* context);
  // Logs "<method> <what> from <peer>: OK in <ms> ms" (info) or the status
  // (warn), and returns the status for gRPC.
  grpc::Status Done(const absl::Status& status, std::string_view what);

 private:
  std::string method_, peer_;
  std::chrono::steady_clock::time_point start_;
};

// Polled by the engines: true once the client went away or the server
// shuts down.
inline std::function<bool()> CancelledBy(grpc::ServerContext* context) {
  return [context] { return context->IsCancelled(); };
}

// Runs an RPC's body and logs its outcome with the `what` the body set last:
// handlers name what they know as they learn it ("" until the model is
// parsed, then its name, then the checkpoint), and return early with
// RETURN_IF_ERROR / ASSIGN_OR_RETURN.
grpc::Status RunLogged(std::string_view method, grpc::ServerContext* context,
                       absl::FunctionRef<absl::Status(std::string& what)> body);

}  // namespace garden

#endif  // GARDEN_SERVER_SERVICE_RPC_LOG_H_

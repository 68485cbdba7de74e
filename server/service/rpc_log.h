// One log line per RPC: its outcome, what it was about, who asked and how
// long it took; and the observer (gardend's metrics) told of each RPC.
#ifndef GARDEN_SERVER_SERVICE_RPC_LOG_H_
#define GARDEN_SERVER_SERVICE_RPC_LOG_H_

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"

namespace garden {

// Told of every RPC the Garden service takes, as it starts and ends.
class RpcObserver {
 public:
  virtual ~RpcObserver() = default;
  // `user`: the token's name, "" on a server without tokens.
  virtual void Started(std::string_view method, std::string_view user) = 0;
  virtual void Finished(std::string_view method, std::string_view user,
                        absl::StatusCode code, double seconds) = 0;
};
// Process-wide rules for every RPC, set before serving.
struct RpcPolicy {
  RpcObserver* observer = nullptr;  // must outlive the server; null: none
  // RPCs one caller may have in flight (0: no limit); more are
  // RESOURCE_EXHAUSTED naming the limit. A caller is a token's name, or
  // without tokens the peer's address.
  uint32_t max_streams_per_user = 0;
  // Steps one request may select (0: no limit); more are
  // RESOURCE_EXHAUSTED naming the limit (request_prologue.h).
  uint32_t max_steps_per_request = 0;
  // Directories whose paths clients see root-relative (client_message.h);
  // the server's own log keeps every path.
  std::vector<std::string> private_roots;
};
void SetRpcPolicy(const RpcPolicy& policy);
uint32_t MaxStepsPerRequest();

class RpcLog {
 public:
  RpcLog(std::string_view method, grpc::ServerContext* context);
  // Logs "<method> <what> from <user at peer>: OK in <ms> ms" (info) or the
  // status (warn), with the request's fields in json logs (log_format.h),
  // and returns the status for gRPC, its message as ForClient shows it. A
  // body cancelled because the client's deadline passed is
  // DEADLINE_EXCEEDED, saying so.
  grpc::Status Done(const absl::Status& status, std::string_view what);

  // Who the caller is for fairness and limits: the token's name, else the
  // peer's address without its port ("ipv4:127.0.0.1").
  const std::string& caller() const { return caller_; }

 private:
  std::string method_, peer_, user_, caller_, model_, request_id_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::system_clock::time_point deadline_;  // the client's; max: none
};

// Polled by the engines: true once the client went away or the server
// shuts down.
inline std::function<bool()> CancelledBy(grpc::ServerContext* context) {
  return [context] { return context->IsCancelled(); };
}

// Runs an RPC's body and logs its outcome with the `what` the body set last:
// handlers name what they know as they learn it ("" until the model is
// parsed, then its name, then the checkpoint), and return early with
// RETURN_IF_ERROR / ASSIGN_OR_RETURN. The body's pool tasks go into the
// caller's lane (thread_pool.h); a caller over max_streams_per_user gets
// RESOURCE_EXHAUSTED without the body running.
grpc::Status RunLogged(std::string_view method, grpc::ServerContext* context,
                       absl::FunctionRef<absl::Status(std::string& what)> body);

}  // namespace garden

#endif  // GARDEN_SERVER_SERVICE_RPC_LOG_H_

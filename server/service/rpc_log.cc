#include "server/service/rpc_log.h"

#include <memory>

#include "common/base/transfer_meter.h"
#include "server/service/convert.h"
#include "spdlog/spdlog.h"

namespace garden {

RpcLog::RpcLog(std::string_view method, grpc::ServerContext* context)
    : method_(method),
      peer_(context->peer()),
      start_(std::chrono::steady_clock::now()) {}

grpc::Status RpcLog::Done(const absl::Status& status, std::string_view what) {
  const double ms = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start_)
                        .count();
  if (status.ok()) {
    spdlog::info("{} {} from {}: OK in {:.1f} ms", method_, what, peer_, ms);
  } else {
    spdlog::warn("{} {} from {}: {} in {:.1f} ms", method_, what, peer_,
                 status.ToString(), ms);
  }
  return ToGrpcStatus(status);
}

grpc::Status RunLogged(
    std::string_view method, grpc::ServerContext* context,
    absl::FunctionRef<absl::Status(std::string& what)> body) {
  RpcLog log(method, context);
  // What the request fetches from the Hub is counted here, for its
  // progress messages (the pool carries it into the request's tasks).
  ScopedTransferMeter scope(std::make_shared<TransferMeter>());
  std::string what;
  const absl::Status status = body(what);
  return log.Done(status, what);
}

}  // namespace garden

#include "server/service/rpc_log.h"

#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/transfer_meter.h"
#include "nlohmann/json.hpp"
#include "server/engine/thread_pool.h"
#include "server/security/token_auth.h"
#include "server/service/client_message.h"
#include "server/service/convert.h"
#include "server/service/log_format.h"
#include "spdlog/spdlog.h"

namespace garden {
namespace {

std::atomic<RpcObserver*> g_observer{nullptr};
std::atomic<uint32_t> g_max_streams_per_user{0};
std::atomic<uint32_t> g_max_steps_per_request{0};
// Set once, before serving.
std::vector<std::string>& PrivateRoots() {
  static auto* roots = new std::vector<std::string>();
  return *roots;
}

// RPCs in flight per caller, for max_streams_per_user.
class InFlight {
 public:
  // False (and nothing held) if `caller` already has `limit` in flight.
  bool Enter(const std::string& caller, uint32_t limit) {
    std::lock_guard lock(mu_);
    uint32_t& n = counts_[caller];
    if (limit > 0 && n >= limit) {
      if (n == 0) counts_.erase(caller);
      return false;
    }
    ++n;
    return true;
  }
  void Leave(const std::string& caller) {
    std::lock_guard lock(mu_);
    auto it = counts_.find(caller);
    if (it != counts_.end() && --it->second == 0) counts_.erase(it);
  }

 private:
  std::mutex mu_;
  std::map<std::string, uint32_t> counts_;
};

InFlight& CallsInFlight() {
  static InFlight* in_flight = new InFlight();  // never destroyed: handlers may outlive main
  return *in_flight;
}

// "ipv4:127.0.0.1:53294" -> "ipv4:127.0.0.1"; "ipv6:[::1]:5" -> "ipv6:[::1]".
std::string PeerHost(const std::string& peer) {
  const size_t colon = peer.rfind(':');
  const size_t bracket = peer.rfind(']');
  if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket) ||
      peer.find(':') == colon) {
    return peer;  // no port ("unix:/path")
  }
  return peer.substr(0, colon);
}

// A client's own request id or model header, if it is short and plain:
// [A-Za-z0-9._/@:-], at most 128 bytes. Anything else is not logged.
std::string PlainMetadata(const grpc::ServerContext& context, const char* key) {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(key);
  if (it == metadata.end() || it->second.size() == 0 || it->second.size() > 128) {
    return "";
  }
  std::string value(it->second.data(), it->second.size());
  for (const char c : value) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("._/@:-").find(c) == std::string_view::npos) {
      return "";
    }
  }
  return value;
}

// Unique within a run and unlikely to repeat across restarts: a random
// prefix for the process and a counter.
std::string NewRequestId() {
  static const uint32_t prefix = std::random_device{}();
  static std::atomic<uint32_t> counter{0};
  return absl::StrFormat("%08x%08x", prefix, counter.fetch_add(1) + 1);
}

}  // namespace

uint32_t MaxStepsPerRequest() { return g_max_steps_per_request.load(); }

void SetRpcPolicy(const RpcPolicy& policy) {
  g_observer.store(policy.observer);
  g_max_streams_per_user.store(policy.max_streams_per_user);
  g_max_steps_per_request.store(policy.max_steps_per_request);
  PrivateRoots() = policy.private_roots;
}

RpcLog::RpcLog(std::string_view method, grpc::ServerContext* context)
    : method_(method),
      peer_(context->peer()),
      user_(UserOf(*context)),
      model_(PlainMetadata(*context, "x-garden-model")),
      request_id_(PlainMetadata(*context, "x-request-id")),
      start_(std::chrono::steady_clock::now()),
      deadline_(context->deadline()) {
  if (request_id_.empty()) request_id_ = NewRequestId();
  caller_ = user_.empty() ? PeerHost(peer_) : user_;
  if (RpcObserver* observer = g_observer.load()) observer->Started(method_, user_);
}

grpc::Status RpcLog::Done(const absl::Status& outcome, std::string_view what) {
  const double ms = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start_)
                        .count();
  absl::Status status = outcome;
  if (absl::IsCancelled(status) &&
      deadline_ != std::chrono::system_clock::time_point::max() &&
      std::chrono::system_clock::now() >= deadline_) {
    status = absl::DeadlineExceededError(absl::StrFormat(
        "the client's deadline passed; the work stopped after %.1f ms (%s)", ms,
        std::string(status.message())));
  }
  if (RpcObserver* observer = g_observer.load()) {
    observer->Finished(method_, user_, status.code(), ms / 1000);
  }
  nlohmann::ordered_json fields = {{"request_id", request_id_}, {"method", method_}};
  if (!user_.empty()) fields["user"] = user_;
  fields["peer"] = peer_;
  if (!model_.empty()) fields["model"] = model_;
  if (!what.empty()) fields["what"] = std::string(what);
  fields["code"] = absl::StatusCodeToString(status.code());
  fields["duration_ms"] = std::round(ms * 10) / 10;
  ScopedLogFields scope(fields);
  // The caller's token name, never the token.
  const std::string from =
      user_.empty() ? peer_ : absl::StrCat(user_, " at ", peer_);
  if (status.ok()) {
    spdlog::info("{} {} from {}: OK in {:.1f} ms", method_, what, from, ms);
  } else {
    spdlog::warn("{} {} from {}: {} in {:.1f} ms", method_, what, from,
                 status.ToString(), ms);
  }
  if (status.ok() || PrivateRoots().empty()) return ToGrpcStatus(status);
  return ToGrpcStatus(absl::Status(
      status.code(), ForClient(std::string(status.message()), PrivateRoots())));
}

grpc::Status RunLogged(
    std::string_view method, grpc::ServerContext* context,
    absl::FunctionRef<absl::Status(std::string& what)> body) {
  RpcLog log(method, context);
  const uint32_t limit = g_max_streams_per_user.load();
  if (!CallsInFlight().Enter(log.caller(), limit)) {
    return log.Done(
        absl::ResourceExhaustedError(absl::StrCat(
            log.caller(), " already has ", limit,
            " requests in flight, the server's limit "
            "(--max-streams-per-user ", limit, "); retry when one has finished")),
        "");
  }
  // What the request fetches from the Hub is counted here, for its
  // progress messages (the pool carries it into the request's tasks).
  ScopedTransferMeter scope(std::make_shared<TransferMeter>());
  ScopedPoolLane lane(log.caller());
  std::string what;
  const absl::Status status = body(what);
  CallsInFlight().Leave(log.caller());
  return log.Done(status, what);
}

}  // namespace garden

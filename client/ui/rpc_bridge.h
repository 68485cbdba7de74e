// The page's way to gardend: a Garden RPC named in a URL, its request in
// protobuf's JSON mapping, its answer as JSON: one object for a unary RPC,
// one line per message for a streaming one. Calls go through the client's
// Connection (deadline, token, x-garden-model, TLS), as the CLI's do.
//
// JSON out uses the .proto's field names (snake_case) and prints fields
// that hold their default value (a step 0 is "step": 0, not absent); 64-bit
// integers are strings, as the JSON mapping says.
#ifndef GARDEN_CLIENT_UI_RPC_BRIDGE_H_
#define GARDEN_CLIENT_UI_RPC_BRIDGE_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/commands/connection.h"
#include "google/protobuf/message.h"

namespace garden::client {

// `message` as JSON (see above).
std::string MessageToJson(const google::protobuf::Message& message);

// `json` into `message`. INVALID_ARGUMENT with the parser's reason for
// JSON that is not that message (unknown fields included).
absl::Status JsonToMessage(std::string_view json, google::protobuf::Message* message);

// {"status": {"code": "NOT_FOUND", "message": "..."}}; {"code": "OK"} alone
// for OK.
std::string StatusToJson(const absl::Status& status);

// One streaming call under way: its messages as JSON lines, then its end.
class StreamCall {
 public:
  virtual ~StreamCall() = default;
  // The next message as JSON into `json`; false once the stream has ended.
  virtual bool Next(std::string* json) = 0;
  // The status it ended with (after Next returned false).
  virtual absl::Status Finish() = 0;
  // Cancels the call (from any thread); gardend sees CANCELLED.
  virtual void Cancel() = 0;
};

class RpcBridge {
 public:
  explicit RpcBridge(Connection& connection) : connection_(connection) {}

  // The methods the page may call, by kind.
  static std::vector<std::string> UnaryMethods();
  static std::vector<std::string> StreamingMethods();

  // Runs the unary `method` with `json` as its request; the response as
  // JSON. NOT_FOUND for a method that is not a unary Garden RPC,
  // INVALID_ARGUMENT for a request that does not parse; else the RPC's own
  // status.
  absl::StatusOr<std::string> CallUnary(std::string_view method, std::string_view json);

  // Starts the streaming `method` (errors as CallUnary's, before anything
  // is sent). `id` ("" for none) names it for Cancel while it runs: 1 to 64
  // of [A-Za-z0-9_-], else INVALID_ARGUMENT; ALREADY_EXISTS while another
  // request of that id runs. The id is released when the call is destroyed.
  absl::StatusOr<std::unique_ptr<StreamCall>> OpenStream(std::string_view method,
                                                         std::string_view json,
                                                         std::string id);

  // Cancels the running stream `id`; false if none runs under that id.
  bool Cancel(std::string_view id);

 private:
  friend class RegisteredStream;
  void Release(const std::string& id);

  Connection& connection_;
  std::mutex mutex_;
  std::map<std::string, StreamCall*, std::less<>> running_;  // by id
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_UI_RPC_BRIDGE_H_

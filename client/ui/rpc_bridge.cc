#include "client/ui/rpc_bridge.h"

#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;

// A Garden stream as JSON lines.
template <typename Message>
class TypedStream : public StreamCall {
 public:
  explicit TypedStream(ServerStream<Message> stream) : stream_(std::move(stream)) {}

  bool Next(std::string* json) override {
    if (!stream_.Read(&message_)) return false;
    *json = MessageToJson(message_);
    return true;
  }
  absl::Status Finish() override { return stream_.Finish(); }
  void Cancel() override { stream_.context().TryCancel(); }

 private:
  ServerStream<Message> stream_;
  Message message_;
};

using UnaryRoute =
    std::function<absl::StatusOr<std::string>(Connection&, std::string_view json)>;
using StreamRoute = std::function<absl::StatusOr<std::unique_ptr<StreamCall>>(
    Connection&, std::string_view json)>;

template <typename Request, typename Response>
UnaryRoute Unary(UnaryMethod<Request, Response> method) {
  return [method](Connection& connection,
                  std::string_view json) -> absl::StatusOr<std::string> {
    Request request;
    RETURN_IF_ERROR(JsonToMessage(json, &request));
    Response response;
    RETURN_IF_ERROR(connection.Call(method, request, &response));
    return MessageToJson(response);
  };
}

template <typename Request, typename Message>
StreamRoute Streaming(std::unique_ptr<grpc::ClientReader<Message>> (
    Stub::*method)(grpc::ClientContext*, const Request&)) {
  return [method](Connection& connection, std::string_view json)
             -> absl::StatusOr<std::unique_ptr<StreamCall>> {
    Request request;
    RETURN_IF_ERROR(JsonToMessage(json, &request));
    return std::unique_ptr<StreamCall>(
        std::make_unique<TypedStream<Message>>(connection.Stream(method, request)));
  };
}

// Every RPC of the Garden service (proto/garden/v1/garden.proto), by name.
const std::map<std::string, UnaryRoute, std::less<>>& UnaryRoutes() {
  static const auto* routes = new std::map<std::string, UnaryRoute, std::less<>>{
      {"ListModels", Unary(&Stub::ListModels)},
      {"ListTensors", Unary(&Stub::ListTensors)},
      {"ListDatasets", Unary(&Stub::ListDatasets)},
      {"Audit", Unary(&Stub::Audit)},
      {"Tokenize", Unary(&Stub::Tokenize)},
      {"Logits", Unary(&Stub::Logits)},
      {"Attention", Unary(&Stub::Attention)},
  };
  return *routes;
}

const std::map<std::string, StreamRoute, std::less<>>& StreamRoutes() {
  static const auto* routes = new std::map<std::string, StreamRoute, std::less<>>{
      {"StreamMatrix", Streaming(&Stub::StreamMatrix)},
      {"StreamHistograms", Streaming(&Stub::StreamHistograms)},
      {"StreamMSD", Streaming(&Stub::StreamMSD)},
      {"StreamBifurcation", Streaming(&Stub::StreamBifurcation)},
      {"StreamLayerStats", Streaming(&Stub::StreamLayerStats)},
      {"Generate", Streaming(&Stub::Generate)},
      {"CausalUnmask", Streaming(&Stub::CausalUnmask)},
      {"StreamPerplexity", Streaming(&Stub::StreamPerplexity)},
      {"StreamPrune", Streaming(&Stub::StreamPrune)},
  };
  return *routes;
}

template <typename Routes>
std::vector<std::string> Names(const Routes& routes) {
  std::vector<std::string> names;
  for (const auto& [name, route] : routes) names.push_back(name);
  return names;
}

template <typename Routes>
absl::StatusOr<const typename Routes::mapped_type*> Find(const Routes& routes,
                                                        std::string_view method,
                                                        const char* kind) {
  const auto it = routes.find(method);
  if (it == routes.end()) {
    return absl::NotFoundError(absl::StrCat("no ", kind, " Garden RPC named \"",
                                            absl::CHexEscape(ToAbsl(method)),
                                            "\"; the ", kind, " ones: ",
                                            absl::StrJoin(Names(routes), ", ")));
  }
  return &it->second;
}

bool ValidId(std::string_view id) {
  return !id.empty() && id.size() <= 64 && absl::c_all_of(id, [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

}  // namespace

std::string MessageToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  // Printing a valid message cannot fail (its strings are UTF-8: the
  // generated parser checks).
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

absl::Status JsonToMessage(std::string_view json, google::protobuf::Message* message) {
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the request is not a ", message->GetDescriptor()->full_name(),
        " in protobuf's JSON mapping: ", std::string(status.message())));
  }
  return absl::OkStatus();
}

std::string StatusToJson(const absl::Status& status) {
  nlohmann::json code{{"code", absl::StatusCodeToString(status.code())}};
  if (!status.ok()) code["message"] = std::string(status.message());
  return nlohmann::json{{"status", code}}.dump(-1, ' ', false,
                                                nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> RpcBridge::UnaryMethods() { return Names(UnaryRoutes()); }
std::vector<std::string> RpcBridge::StreamingMethods() { return Names(StreamRoutes()); }

absl::StatusOr<std::string> RpcBridge::CallUnary(std::string_view method,
                                                 std::string_view json) {
  ASSIGN_OR_RETURN(const UnaryRoute* route, Find(UnaryRoutes(), method, "unary"));
  return (*route)(connection_, json);
}

// A stream registered under its id while it lives.
class RegisteredStream : public StreamCall {
 public:
  RegisteredStream(RpcBridge& bridge, std::string id, std::unique_ptr<StreamCall> call)
      : bridge_(bridge), id_(std::move(id)), call_(std::move(call)) {}
  ~RegisteredStream() override { bridge_.Release(id_); }

  bool Next(std::string* json) override { return call_->Next(json); }
  absl::Status Finish() override { return call_->Finish(); }
  void Cancel() override { call_->Cancel(); }

 private:
  RpcBridge& bridge_;
  const std::string id_;
  std::unique_ptr<StreamCall> call_;
};

absl::StatusOr<std::unique_ptr<StreamCall>> RpcBridge::OpenStream(std::string_view method,
                                                                  std::string_view json,
                                                                  std::string id) {
  ASSIGN_OR_RETURN(const StreamRoute* route, Find(StreamRoutes(), method, "streaming"));
  if (!id.empty() && !ValidId(id)) {
    return absl::InvalidArgumentError(
        "X-Garden-Request: expected 1 to 64 of the characters A-Z a-z 0-9 _ -");
  }
  if (id.empty()) return (*route)(connection_, json);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (running_.contains(id)) {
      return absl::AlreadyExistsError(
          absl::StrCat("a request named ", id, " (X-Garden-Request) is running"));
    }
    running_[id] = nullptr;  // reserved while the call starts
  }
  absl::StatusOr<std::unique_ptr<StreamCall>> call = (*route)(connection_, json);
  if (!call.ok()) {
    Release(id);
    return call.status();
  }
  auto registered = std::make_unique<RegisteredStream>(*this, id, *std::move(call));
  std::lock_guard<std::mutex> lock(mutex_);
  running_[id] = registered.get();
  return std::unique_ptr<StreamCall>(std::move(registered));
}

bool RpcBridge::Cancel(std::string_view id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = running_.find(id);
  if (it == running_.end() || it->second == nullptr) return false;
  it->second->Cancel();
  return true;
}

void RpcBridge::Release(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  running_.erase(id);
}

}  // namespace garden::client

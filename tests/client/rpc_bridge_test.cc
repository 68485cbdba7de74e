// RpcBridge and its JSON: what garden ui's page sends and reads.
#include "client/ui/rpc_bridge.h"

#include <algorithm>
#include <string>

#include "garden/v1/garden.pb.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;

TEST(RpcBridgeJsonTest, PrintsProtoNamesAndDefaults) {
  pb::HistogramFrame frame;
  frame.set_step(0);
  frame.add_counts(7);
  frame.set_mean(0.5);
  const nlohmann::json json = nlohmann::json::parse(MessageToJson(frame));
  // A step 0 is printed, 64-bit integers as strings (the JSON mapping).
  ASSERT_TRUE(json.contains("step"));
  EXPECT_EQ(json["step"], "0");
  EXPECT_EQ(json["counts"], nlohmann::json::array({"7"}));
  EXPECT_EQ(json["mean"], 0.5);
  EXPECT_TRUE(json.contains("posinf"));
}

TEST(RpcBridgeJsonTest, ParsesRequestsAndNamesWhatIsWrong) {
  pb::StreamHistogramsRequest request;
  ASSERT_TRUE(JsonToMessage(R"({"model": {"suite": "s", "size": "70m", "variant": "deduped"},
                               "steps": {"list": {"steps": [0, "1000"]}}, "bins": 64})",
                            &request)
                  .ok());
  EXPECT_EQ(request.model().size(), "70m");
  ASSERT_EQ(request.steps().list().steps_size(), 2);
  EXPECT_EQ(request.steps().list().steps(1), 1000);
  EXPECT_EQ(request.bins(), 64);

  for (const char* bad : {"", "{", R"({"binz": 3})", R"({"bins": "many"})", "[]"}) {
    pb::StreamHistogramsRequest r;
    const absl::Status status = JsonToMessage(bad, &r);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("garden.v1.StreamHistogramsRequest"), std::string::npos)
        << status;
  }
}

TEST(RpcBridgeJsonTest, StatusLines) {
  EXPECT_EQ(nlohmann::json::parse(StatusToJson(absl::OkStatus())),
            nlohmann::json::parse(R"({"status": {"code": "OK"}})"));
  EXPECT_EQ(nlohmann::json::parse(StatusToJson(absl::NotFoundError("no \"x\"\n"))),
            nlohmann::json::parse(R"({"status": {"code": "NOT_FOUND", "message": "no \"x\"\n"}})"));
  // Bytes that are not UTF-8 still make valid JSON.
  EXPECT_NO_THROW(nlohmann::json::parse(StatusToJson(absl::InternalError("\xff\xfe"))));
}

TEST(RpcBridgeTest, ServesEveryRpcOfTheService) {
  std::vector<std::string> served = RpcBridge::UnaryMethods();
  for (const std::string& m : RpcBridge::StreamingMethods()) served.push_back(m);
  std::sort(served.begin(), served.end());
  std::vector<std::string> service;
  const auto* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("garden.v1.Garden");
  ASSERT_NE(descriptor, nullptr);
  for (int i = 0; i < descriptor->method_count(); ++i) {
    service.push_back(descriptor->method(i)->name());
    const bool streaming = descriptor->method(i)->server_streaming();
    const auto& kind = streaming ? RpcBridge::StreamingMethods() : RpcBridge::UnaryMethods();
    EXPECT_NE(std::find(kind.begin(), kind.end(), descriptor->method(i)->name()), kind.end())
        << descriptor->method(i)->name();
  }
  std::sort(service.begin(), service.end());
  EXPECT_EQ(served, service);
}

TEST(RpcBridgeTest, RefusesBeforeAnyCall) {
  Connection connection;  // never connected: every case fails before a call
  RpcBridge bridge(connection);
  absl::StatusOr<std::string> unknown = bridge.CallUnary("DropTables", "{}");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("ListModels"), std::string::npos);
  // A streaming method is not a unary one, and the other way round.
  EXPECT_EQ(bridge.CallUnary("StreamMSD", "{}").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(bridge.OpenStream("ListModels", "{}", "").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(bridge.OpenStream("StreamMSD", "{nope", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const char* id : {"has space", "x/y", "\xc3\xa9"}) {
    EXPECT_EQ(bridge.OpenStream("StreamMSD", "{}", id).status().code(),
              absl::StatusCode::kInvalidArgument)
        << id;
  }
  EXPECT_EQ(bridge.OpenStream("StreamMSD", "{}", std::string(65, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A refused request leaves no id behind.
  EXPECT_EQ(bridge.OpenStream("StreamMSD", "{nope", "job").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(bridge.Cancel("job"));
}

}  // namespace
}  // namespace garden::client

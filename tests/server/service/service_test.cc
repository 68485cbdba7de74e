// The gRPC service in-process: request validation and status codes for
// inputs the CLI cannot even send (NUL bytes, unset fields).
#include <filesystem>
#include <functional>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/garden_service.h"
#include "server/store/model_cache.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

namespace fs = std::filesystem;
namespace pb = ::garden::v1;
using ::testing::HasSubstr;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int step : {0, 1, 2}) {
      const fs::path dir = fs::path(root_.path()) / "pythia-70m" /
                           ("step" + std::to_string(step));
      fs::create_directories(dir);
      std::vector<float> values(32 * 8);
      for (size_t i = 0; i < values.size(); ++i)
        values[i] = 0.01f * (i % 17) - 0.08f;
      testing::WriteSafetensors(
          (dir / "model.safetensors").string(),
          {{"embed_out.weight", "F16", {32, 8}, testing::F16Bytes(values)}});
    }
    auto store = CheckpointStore::Open({.roots = {root_.path()}});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    pool_ = std::make_unique<ThreadPool>(2);
    models_ = std::make_unique<ModelCache>(*store_, ModelCache::Options{});
    service_ = std::make_unique<GardenService>(*store_, *pool_, *models_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    stub_ = pb::Garden::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                            grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  pb::StreamHistogramsRequest Request() {
    pb::StreamHistogramsRequest request;
    request.mutable_model()->set_size("70m");
    request.mutable_model()->set_variant("standard");
    request.mutable_steps()->set_all(true);
    return request;
  }

  // Frames received and the final status.
  std::pair<std::vector<pb::HistogramFrame>, grpc::Status> Stream(
      const pb::StreamHistogramsRequest& request) {
    grpc::ClientContext context;
    auto reader = stub_->StreamHistograms(&context, request);
    std::vector<pb::HistogramFrame> frames;
    pb::StreamHistogramsResponse message;
    while (reader->Read(&message)) {
      if (message.has_frame()) frames.push_back(message.frame());
    }
    return {frames, reader->Finish()};
  }

  void ExpectInvalid(const pb::StreamHistogramsRequest& request,
                     const std::string& message) {
    auto [frames, status] = Stream(request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(message));
    EXPECT_TRUE(frames.empty());
  }

  testing::TempDir root_;
  std::unique_ptr<CheckpointStore> store_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ModelCache> models_;
  std::unique_ptr<GardenService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<pb::Garden::Stub> stub_;
};

TEST_F(ServiceTest, DefaultsGiveSixtyFourBinsOfTheUnembedding) {
  auto [frames, status] = Stream(Request());
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].counts_size(), 64);
  EXPECT_EQ(frames[2].step(), 2);
  EXPECT_EQ(frames[2].index(), 2u);
  EXPECT_EQ(frames[2].total(), 3u);
  EXPECT_EQ(frames[0].n(), 256u);
  EXPECT_EQ(frames[0].dtype(), "F16");
}

TEST_F(ServiceTest, RejectsNamesThatCouldReachAPath) {
  auto nul = Request();
  nul.mutable_model()->set_size(std::string("70m\0/../../etc", 14));
  ExpectInvalid(nul, "size \"70m\\x00/../../etc\"");
  auto slash = Request();
  slash.set_tensor("embed_out/weight");
  ExpectInvalid(slash, "outside [A-Za-z0-9._-]");
  auto dots = Request();
  dots.mutable_model()->set_suite("..");
  ExpectInvalid(dots, "contains \"..\"");
  auto variant = Request();
  variant.mutable_model()->set_variant("NDDX");
  ExpectInvalid(variant, "variant \"NDDX\" is unknown");
}

TEST_F(ServiceTest, RejectsBadBinsRangesAndSteps) {
  auto zero = Request();
  zero.set_bins(0);
  ExpectInvalid(zero, "bins must be in [1, 65536], got 0");
  auto many = Request();
  many.set_bins(65537);
  ExpectInvalid(many, "got 65537");
  auto nan = Request();
  nan.mutable_range()->set_lo(std::nan(""));
  nan.mutable_range()->set_hi(1);
  ExpectInvalid(nan, "must be finite");
  auto empty = Request();
  empty.mutable_range()->set_lo(0.5);
  empty.mutable_range()->set_hi(0.5);
  ExpectInvalid(empty, "lo < hi");
  auto unset = Request();
  unset.clear_steps();
  ExpectInvalid(unset, "no selection");
  auto reversed = Request();
  reversed.mutable_steps()->mutable_range()->set_first(5);
  reversed.mutable_steps()->mutable_range()->set_last(1);
  ExpectInvalid(reversed, "needs 0 <= first <= last");
  auto negative = Request();
  negative.mutable_steps()->mutable_list()->add_steps(-1);
  ExpectInvalid(negative, "step -1 is negative");
}

TEST_F(ServiceTest, MissingThingsAreNotFound) {
  auto step = Request();
  step.mutable_steps()->mutable_list()->add_steps(7);
  auto [frames, status] = Stream(step);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("nearest present: 1, 2"));
  pb::ListTensorsRequest tensors;
  tensors.mutable_checkpoint()->mutable_model()->set_size("70m");
  tensors.mutable_checkpoint()->mutable_model()->set_variant("deduped");
  pb::ListTensorsResponse response;
  grpc::ClientContext context;
  const grpc::Status listed = stub_->ListTensors(&context, tensors, &response);
  EXPECT_EQ(listed.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(listed.error_message(), HasSubstr("closest present: pythia-70m"));
}

TEST_F(ServiceTest, ListsModelsWithTheirGapsInPythiasSchedule) {
  pb::ListModelsResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ListModels(&context, {}, &response).ok());
  ASSERT_EQ(response.models_size(), 1);
  const auto& model = response.models(0);
  EXPECT_EQ(model.model().variant(), "standard");
  EXPECT_EQ(model.steps_size(), 3);
  EXPECT_EQ(model.missing_from_schedule_size(), 154 - 3);
  EXPECT_EQ(model.missing_from_schedule(0), 4);
}

// Reads a stream to its end; its status.
template <typename Reader, typename Message>
grpc::Status Drain(Reader reader, Message message) {
  while (reader->Read(&message)) {
  }
  return reader->Finish();
}

TEST_F(ServiceTest, ASweepLooksItsModelUpOnce) {
  // The model lookups one call makes.
  auto lookups = [&](const std::function<grpc::Status()>& call) {
    const uint64_t before = store_->model_lookups();
    EXPECT_TRUE(call().ok());
    return store_->model_lookups() - before;
  };
  // Three steps, an audit first (all three are identical: steps 1 and 2 are
  // left out), then the sweep: one lookup of the model, not one per step.
  auto hist = Request();
  hist.set_exclude_flagged(true);
  std::vector<pb::HistogramFrame> frames;
  EXPECT_EQ(lookups([&] {
              auto [got, status] = Stream(hist);
              frames = got;
              return status;
            }),
            1u);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].step(), 0);

  for (auto mode : {pb::StreamMSDRequest::REFERENCE,
                    pb::StreamMSDRequest::CONSECUTIVE,
                    pb::StreamMSDRequest::LAG}) {
    pb::StreamMSDRequest msd;
    *msd.mutable_model() = hist.model();
    *msd.mutable_steps() = hist.steps();
    msd.set_mode(mode);
    EXPECT_EQ(lookups([&] {
                grpc::ClientContext context;
                return Drain(stub_->StreamMSD(&context, msd),
                             pb::StreamMSDResponse());
              }),
              1u)
        << mode;
  }
  pb::StreamBifurcationRequest bifurcation;
  *bifurcation.mutable_model() = hist.model();
  *bifurcation.mutable_steps() = hist.steps();
  bifurcation.set_exclude_flagged(true);
  EXPECT_EQ(lookups([&] {
              grpc::ClientContext context;
              return Drain(stub_->StreamBifurcation(&context, bifurcation),
                           pb::StreamBifurcationResponse());
            }),
            1u);
  pb::AuditRequest audit;
  *audit.mutable_model() = hist.model();
  *audit.mutable_steps() = hist.steps();
  pb::AuditResponse report;
  EXPECT_EQ(lookups([&] {
              grpc::ClientContext context;
              return stub_->Audit(&context, audit, &report);
            }),
            1u);
  EXPECT_EQ(report.steps_checked(), 3u);
  ASSERT_GE(report.findings_size(), 1);
  EXPECT_EQ(report.findings(0).kind(), "identical");
}

TEST_F(ServiceTest, ClientCancellationEndsTheStream) {
  grpc::ClientContext context;
  auto request = Request();
  request.mutable_range()->set_lo(-1);
  request.mutable_range()->set_hi(1);
  auto reader = stub_->StreamHistograms(&context, request);
  pb::StreamHistogramsResponse message;
  ASSERT_TRUE(reader->Read(&message));
  context.TryCancel();
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The service keeps serving.
  EXPECT_TRUE(Stream(Request()).second.ok());
}

}  // namespace
}  // namespace garden

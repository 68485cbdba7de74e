// The gRPC face of gardend: validates requests, asks the store and engines,
// and maps absl::Status to gRPC status codes.
#ifndef GARDEN_SERVER_SERVICE_GARDEN_SERVICE_H_
#define GARDEN_SERVER_SERVICE_GARDEN_SERVICE_H_

#include <chrono>
#include <string>
#include <string_view>

#include "common/naming/names.h"
#include "common/naming/step_spec.h"
#include "garden/v1/garden.grpc.pb.h"
#include "server/engine/thread_pool.h"
#include "server/store/checkpoint_store.h"

namespace garden {

class DatasetRegistry;
class ModelCache;

struct ServiceOptions {
  uint32_t max_new_tokens = 1024;        // per Generate request
  uint64_t max_text_bytes = 1ull << 20;  // prompts and texts
  // Attention matrices returned in one response, in values.
  uint64_t max_attention_values = 4ull << 20;
};

class GardenService final : public garden::v1::Garden::Service {
 public:
  // All must outlive the service.
  // `datasets` may be null: a server without evaluation datasets.
  GardenService(CheckpointStore& store, ThreadPool& pool, ModelCache& models,
                ServiceOptions options = {},
                const DatasetRegistry* datasets = nullptr)
      : store_(store),
        pool_(pool),
        models_(models),
        options_(options),
        datasets_(datasets) {}

  grpc::Status ListModels(grpc::ServerContext* context,
                          const garden::v1::ListModelsRequest* request,
                          garden::v1::ListModelsResponse* response) override;

  grpc::Status ListTensors(grpc::ServerContext* context,
                           const garden::v1::ListTensorsRequest* request,
                           garden::v1::ListTensorsResponse* response) override;

  grpc::Status StreamHistograms(
      grpc::ServerContext* context,
      const garden::v1::StreamHistogramsRequest* request,
      grpc::ServerWriter<garden::v1::StreamHistogramsResponse>* writer)
      override;

  grpc::Status StreamMSD(
      grpc::ServerContext* context, const garden::v1::StreamMSDRequest* request,
      grpc::ServerWriter<garden::v1::StreamMSDResponse>* writer) override;

  grpc::Status StreamBifurcation(
      grpc::ServerContext* context,
      const garden::v1::StreamBifurcationRequest* request,
      grpc::ServerWriter<garden::v1::StreamBifurcationResponse>* writer)
      override;

  grpc::Status Audit(grpc::ServerContext* context,
                     const garden::v1::AuditRequest* request,
                     garden::v1::AuditResponse* response) override;

  // Model RPCs, in garden_service_lm.cc (the one service file that needs
  // libtorch).
  grpc::Status Tokenize(grpc::ServerContext* context,
                        const garden::v1::TokenizeRequest* request,
                        garden::v1::TokenizeResponse* response) override;
  grpc::Status Generate(
      grpc::ServerContext* context, const garden::v1::GenerateRequest* request,
      grpc::ServerWriter<garden::v1::GenerateResponse>* writer) override;
  grpc::Status CausalUnmask(
      grpc::ServerContext* context,
      const garden::v1::CausalUnmaskRequest* request,
      grpc::ServerWriter<garden::v1::UnmaskFrame>* writer) override;
  grpc::Status Logits(grpc::ServerContext* context,
                      const garden::v1::LogitsRequest* request,
                      garden::v1::LogitsResponse* response) override;
  grpc::Status Attention(grpc::ServerContext* context,
                         const garden::v1::AttentionRequest* request,
                         garden::v1::AttentionResponse* response) override;
  grpc::Status StreamPerplexity(
      grpc::ServerContext* context,
      const garden::v1::StreamPerplexityRequest* request,
      grpc::ServerWriter<garden::v1::PerplexityPoint>* writer) override;

  grpc::Status ListDatasets(grpc::ServerContext* context,
                            const garden::v1::ListDatasetsRequest* request,
                            garden::v1::ListDatasetsResponse* response) override;

 private:
  // The steps a sweep of `tensor` runs over: the present steps `selection`
  // names, less those an audit of `tensor` flags when `exclude_flagged`;
  // `what` names the sweep in the RPC log.
  struct SweepSteps {
    std::vector<int64_t> steps;
    std::string what;
  };
  absl::StatusOr<SweepSteps> StepsToSweep(
      grpc::ServerContext* context, const ModelKey& key,
      const std::string& tensor, const garden::v1::StepSelection& selection,
      bool exclude_flagged);

  CheckpointStore& store_;
  ThreadPool& pool_;
  ModelCache& models_;
  ServiceOptions options_;
  const DatasetRegistry* datasets_;
};

// Logs one RPC's outcome with its duration and converts its status.
class RpcLog {
 public:
  RpcLog(std::string_view method, grpc::ServerContext* context);
  grpc::Status Done(const absl::Status& status, std::string_view what);

 private:
  std::string method_, peer_;
  std::chrono::steady_clock::time_point start_;
};

// The model and step of a request, validated and canonical.
absl::StatusOr<ModelKey> KeyOf(const garden::v1::ModelRef& ref);
void FillRef(const ModelKey& key, garden::v1::ModelRef* ref);
absl::StatusOr<StepSpec> SpecOf(const garden::v1::StepSelection& selection);

// The tensor a request names, validated; empty means embed_out.weight.
absl::StatusOr<std::string> TensorOf(const std::string& requested);

// The present steps a request selects for a model, and the selection as
// given (for logs).
struct SelectedSteps {
  StepSpec spec;
  std::vector<int64_t> steps;
};
absl::StatusOr<SelectedSteps> SelectSteps(
    CheckpointStore& store, const ModelKey& key,
    const garden::v1::StepSelection& selection);

// absl and gRPC share their code numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace garden

#endif  // GARDEN_SERVER_SERVICE_GARDEN_SERVICE_H_

// The gRPC face of gardend. Handlers parse a request, call an engine
// (server/engine) and convert what it yields; their definitions live by
// kind: catalog_rpcs.cc (models, tensors, datasets), stats_rpcs.cc
// (histograms, MSD, bifurcation, audit), model_rpcs.cc (the RPCs that run
// a model; the one file needing libtorch). The request prologue is in
// request_prologue.h, proto <-> domain conversion in convert.h.
#ifndef GARDEN_SERVER_SERVICE_GARDEN_SERVICE_H_
#define GARDEN_SERVER_SERVICE_GARDEN_SERVICE_H_

#include <cstdint>

#include "garden/v1/garden.grpc.pb.h"
#include "server/engine/compute_gate.h"
#include "server/engine/layer_sweep.h"
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
  // Model computations at once (server/engine/compute_gate.h); 0: no limit.
  uint32_t compute_slots = 1;
  // Working memory that generate, logits and attention reserve, all
  // together (estimates); 0: no budget.
  uint64_t request_memory_bytes = 0;
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
        datasets_(datasets),
        compute_(options.compute_slots, options.request_memory_bytes) {}

  grpc::Status ListModels(grpc::ServerContext* context,
                          const garden::v1::ListModelsRequest* request,
                          garden::v1::ListModelsResponse* response) override;

  grpc::Status ListTensors(grpc::ServerContext* context,
                           const garden::v1::ListTensorsRequest* request,
                           garden::v1::ListTensorsResponse* response) override;

  grpc::Status StreamMatrix(grpc::ServerContext* context,
                            const garden::v1::MatrixRequest* request,
                            grpc::ServerWriter<garden::v1::MatrixBlock>* writer) override;

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

  // Model RPCs, in model_rpcs.cc.
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
  grpc::Status StreamPrune(grpc::ServerContext* context,
                           const garden::v1::PruneRequest* request,
                           grpc::ServerWriter<garden::v1::PrunePoint>* writer) override;

  grpc::Status StreamLayerStats(
      grpc::ServerContext* context, const garden::v1::LayerStatsRequest* request,
      grpc::ServerWriter<garden::v1::LayerStatsRecord>* writer) override;

  grpc::Status ListDatasets(grpc::ServerContext* context,
                            const garden::v1::ListDatasetsRequest* request,
                            garden::v1::ListDatasetsResponse* response) override;

 private:
  CheckpointStore& store_;
  ThreadPool& pool_;
  ModelCache& models_;
  ServiceOptions options_;
  const DatasetRegistry* datasets_;
  ComputeGate compute_;
  LayerStatsCache layer_stats_;
};

}  // namespace garden

#endif  // GARDEN_SERVER_SERVICE_GARDEN_SERVICE_H_

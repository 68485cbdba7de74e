// The gRPC face of gardend: validates requests, asks the store and engines,
// and maps absl::Status to gRPC status codes.
#ifndef GARDEN_SERVER_GARDEN_SERVICE_H_
#define GARDEN_SERVER_GARDEN_SERVICE_H_

#include "garden/v1/garden.grpc.pb.h"
#include "server/checkpoint_store.h"
#include "server/thread_pool.h"

namespace garden {

class GardenService final : public garden::v1::Garden::Service {
 public:
  // Both must outlive the service.
  GardenService(CheckpointStore& store, ThreadPool& pool)
      : store_(store), pool_(pool) {}

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

 private:
  CheckpointStore& store_;
  ThreadPool& pool_;
};

// absl and gRPC share their code numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace garden

#endif  // GARDEN_SERVER_GARDEN_SERVICE_H_

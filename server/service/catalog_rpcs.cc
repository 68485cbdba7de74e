// The catalog RPCs of GardenService: the models, a checkpoint's tensors (and
// a rectangle of one tensor's values) and the evaluation datasets this
// server has.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/naming/step_spec.h"
#include "server/service/convert.h"
#include "server/service/garden_service.h"
#include "server/engine/matrix_region.h"
#include "server/service/rpc_log.h"
#include "server/service/stream_write.h"
#include "server/store/dataset_registry.h"

namespace garden {
namespace {

namespace pb = ::garden::v1;

// Pythia's published steps a listing lacks.
void FillMissingFromSchedule(const ModelListing& listing, pb::ModelInfo* info) {
  for (int64_t step : PythiaSchedule()) {
    if (!std::binary_search(listing.steps.begin(), listing.steps.end(),
                            step)) {
      info->add_missing_from_schedule(step);
    }
  }
}

struct TensorsOfCheckpoint {
  CheckpointLocation where;
  std::vector<TensorListing> tensors;
  std::string config_json;
};

absl::StatusOr<TensorsOfCheckpoint> ReadTensors(CheckpointStore& store,
                                                const ModelKey& key,
                                                int64_t step) {
  RETURN_IF_ERROR(ValidateStep(step));
  TensorsOfCheckpoint out;
  ASSIGN_OR_RETURN(out.where, store.Locate(key, step));
  ASSIGN_OR_RETURN(out.tensors, store.ListTensors(out.where));
  ASSIGN_OR_RETURN(out.config_json, store.ReadConfig(out.where));
  return out;
}

}  // namespace

grpc::Status GardenService::ListDatasets(grpc::ServerContext* context,
                                         const pb::ListDatasetsRequest*,
                                         pb::ListDatasetsResponse* response) {
  return RunLogged("ListDatasets", context, [&](std::string& what) {
    if (datasets_ != nullptr) {
      for (const auto& dataset : datasets_->List()) {
        pb::DatasetInfo* info = response->add_datasets();
        info->set_name(dataset->name);
        info->set_examples(dataset->texts.size());
      }
    }
    what = absl::StrCat(response->datasets_size(), " datasets");
    return absl::OkStatus();
  });
}

grpc::Status GardenService::ListModels(grpc::ServerContext* context,
                                       const pb::ListModelsRequest* request,
                                       pb::ListModelsResponse* response) {
  return RunLogged("ListModels", context, [&](std::string& what) {
    if (!request->suite().empty()) {
      what = request->suite();
      RETURN_IF_ERROR(ValidateName("suite", request->suite()));
    }
    store_.Refresh();
    for (const auto& listing : store_.ListModels(request->suite())) {
      pb::ModelInfo* info = response->add_models();
      FillRef(listing.key, info->mutable_model());
      for (int64_t step : listing.steps) info->add_steps(step);
      info->set_repo_id(listing.repo_id);
      info->set_layout(listing.layout);
      if (listing.key.suite == kDefaultSuite) {
        FillMissingFromSchedule(listing, info);
      }
    }
    what = absl::StrCat(response->models_size(), " models");
    return absl::OkStatus();
  });
}

grpc::Status GardenService::ListTensors(grpc::ServerContext* context,
                                        const pb::ListTensorsRequest* request,
                                        pb::ListTensorsResponse* response) {
  return RunLogged("ListTensors", context, [&](std::string& what) {
    ASSIGN_OR_RETURN(const ModelKey key, KeyOf(request->checkpoint().model()));
    const int64_t step = request->checkpoint().step();
    what = absl::StrCat(key.Name(), " step ", step);
    ASSIGN_OR_RETURN(const TensorsOfCheckpoint read,
                     ReadTensors(store_, key, step));
    FillRef(key, response->mutable_checkpoint()->mutable_model());
    response->mutable_checkpoint()->set_step(read.where.step);
    response->set_config_json(read.config_json);
    for (const auto& t : read.tensors) ToProto(t, response->add_tensors());
    return absl::OkStatus();
  });
}

grpc::Status GardenService::StreamMatrix(grpc::ServerContext* context,
                                         const pb::MatrixRequest* request,
                                         grpc::ServerWriter<pb::MatrixBlock>* writer) {
  return RunLogged("StreamMatrix", context, [&](std::string& what) -> absl::Status {
    ASSIGN_OR_RETURN(const ModelKey key, KeyOf(request->checkpoint().model()));
    const int64_t step = request->checkpoint().step();
    what = absl::StrCat(key.Name(), " step ", step);
    RETURN_IF_ERROR(ValidateStep(step));
    ASSIGN_OR_RETURN(const CheckpointLocation where, store_.Locate(key, step));
    ASSIGN_OR_RETURN(const TensorHandle tensor, store_.OpenTensor(where, request->tensor()));
    const MatrixRegionOptions options;
    ASSIGN_OR_RETURN(const MatrixRegion region,
                     ResolveMatrixRegion(tensor.info->shape,
                                         {.row_begin = request->row_begin(),
                                          .row_end = request->row_end(),
                                          .col_begin = request->col_begin(),
                                          .col_end = request->col_end()},
                                         options));
    what = absl::StrCat(key.Name(), " step ", step, " ", request->tensor(), " rows [",
                        region.row_begin, ", ", region.row_end, ") columns [",
                        region.col_begin, ", ", region.col_end, ")");
    bool first = true;
    return ReadMatrixRegion(
        tensor, region, options, CancelledBy(context),
        [&](int64_t first_row, absl::Span<const double> values) -> absl::Status {
          pb::MatrixBlock block;
          if (first) {
            for (int64_t d : tensor.info->shape) block.add_shape(d);
            block.set_dtype(std::string(DTypeName(tensor.info->dtype)));
            block.set_row_begin(region.row_begin);
            block.set_row_end(region.row_end);
            block.set_col_begin(region.col_begin);
            block.set_col_end(region.col_end);
            first = false;
          }
          block.set_first_row(first_row);
          block.mutable_values()->Add(values.begin(), values.end());
          if (!WriteToStream(context, writer, block)) {
            return absl::CancelledError("the client went away");
          }
          return absl::OkStatus();
        });
  });
}

}  // namespace garden

// What requests over a model's steps open with, written once: the steps a
// request selects, resolved in one lookup of its model, and the prologue of
// the stats RPCs (StreamHistograms, StreamMSD, StreamBifurcation, Audit).
#ifndef GARDEN_SERVER_SERVICE_REQUEST_PROLOGUE_H_
#define GARDEN_SERVER_SERVICE_REQUEST_PROLOGUE_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "common/naming/names.h"
#include "common/naming/step_spec.h"
#include "garden/v1/garden.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/step_tensors.h"
#include "server/engine/thread_pool.h"
#include "server/service/rpc_log.h"
#include "server/store/checkpoint_store.h"

namespace garden {

// The present steps a request selects, located in one snapshot of its model.
struct SelectedSteps {
  StepSpec spec;  // the selection as given, for logs
  std::shared_ptr<const ModelSnapshot> model;
  std::vector<CheckpointLocation> steps;  // ascending
};

// SpecOf's errors, then the store's for a missing model (its one lookup),
// then StepSpec::Resolve's; RESOURCE_EXHAUSTED past the server's
// max_steps_per_request (rpc_log.h).
absl::StatusOr<SelectedSteps> SelectSteps(
    CheckpointStore& store, const ModelKey& key,
    const garden::v1::StepSelection& selection);

// The prologue of the stats RPCs (StreamHistograms, StreamMSD,
// StreamBifurcation, Audit). Open() checks in the order errors are
// reported: the model reference, the tensor name, the RPC's own fields
// (`parse_options`), the step selection; then, with `exclude_flagged`, it
// leaves out the steps an audit of the tensor flags.
class StatsRequest {
 public:
  // All must outlive this object.
  StatsRequest(CheckpointStore& store, ThreadPool& pool,
               grpc::ServerContext* context)
      : store_(store), pool_(pool), context_(context) {}

  // `what` (for the RPC log) becomes the model's name once it is parsed.
  absl::Status Open(const garden::v1::ModelRef& model,
                    const std::string& tensor,
                    const garden::v1::StepSelection& steps,
                    bool exclude_flagged,
                    absl::FunctionRef<absl::Status()> parse_options,
                    std::string& what);
  // The same, with the fields of a sweep request (model, tensor, steps,
  // exclude_flagged).
  template <typename SweepRequest>
  absl::Status Open(const SweepRequest& request,
                    absl::FunctionRef<absl::Status()> parse_options,
                    std::string& what) {
    return Open(request.model(), request.tensor(), request.steps(),
                request.exclude_flagged(), parse_options, what);
  }

  // After a successful Open().
  const ModelKey& key() const { return key_; }
  const ModelSnapshot& model() const { return *model_; }
  // The tensor at each step to sweep, opened lazily once per request.
  const std::shared_ptr<const StepTensors>& steps() const { return steps_; }
  // "pythia-70m embed_out.weight all (154 steps)", for the log.
  const std::string& what() const { return what_; }
  std::function<bool()> cancelled() const { return CancelledBy(context_); }

 private:
  CheckpointStore& store_;
  ThreadPool& pool_;
  grpc::ServerContext* context_;
  ModelKey key_;
  std::shared_ptr<const ModelSnapshot> model_;
  std::shared_ptr<const StepTensors> steps_;
  std::string what_;
};

}  // namespace garden

#endif  // GARDEN_SERVER_SERVICE_REQUEST_PROLOGUE_H_

// Between the API's messages (proto/garden/v1/garden.proto) and the domain:
// a request's names and step selection in, statuses and results out.
#ifndef GARDEN_SERVER_SERVICE_CONVERT_H_
#define GARDEN_SERVER_SERVICE_CONVERT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/naming/names.h"
#include "common/naming/step_spec.h"
#include "common/stats/bifurcation.h"
#include "garden/v1/garden.pb.h"
#include "grpcpp/support/status.h"
#include "server/engine/audit.h"
#include "server/engine/histogram_sweep.h"
#include "server/engine/msd_sweep.h"
#include "server/store/checkpoint_store.h"

namespace garden {

// The model of a request, validated and canonical (MakeModelKey's errors).
absl::StatusOr<ModelKey> KeyOf(const garden::v1::ModelRef& ref);
void FillRef(const ModelKey& key, garden::v1::ModelRef* ref);

// The step of a request about one checkpoint: INVALID_ARGUMENT outside
// [0, kMaxStep].
absl::Status ValidateStep(int64_t step);

// INVALID_ARGUMENT for an unset selection, all=false, an empty list or a
// range with first < 0 or first > last.
absl::StatusOr<StepSpec> SpecOf(const garden::v1::StepSelection& selection);

// The tensor a request names, validated; empty means embed_out.weight.
absl::StatusOr<std::string> TensorOf(const std::string& requested);

// INVALID_ARGUMENT naming an unknown mode.
absl::StatusOr<MsdSweepOptions::Mode> MsdModeOf(
    garden::v1::StreamMSDRequest::Mode mode);

// absl and gRPC share their code numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Results into messages. A histogram frame's index and total are the
// caller's.
void ToProto(const StepHistogram& h, garden::v1::HistogramFrame* out);
void ToProto(const MsdPoint& p, garden::v1::MSDPoint* out);
void ToProto(int64_t step, const StepShape& shape,
             garden::v1::BifurcationStep* out);
void ToProto(const AuditFinding& f, garden::v1::AuditFinding* out);
void ToProto(const TensorListing& t, garden::v1::TensorInfo* out);

}  // namespace garden

#endif  // GARDEN_SERVER_SERVICE_CONVERT_H_

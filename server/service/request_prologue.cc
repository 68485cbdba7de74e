#include "server/service/request_prologue.h"

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "server/engine/audit.h"
#include "server/service/convert.h"
#include "spdlog/spdlog.h"

namespace garden {

absl::StatusOr<SelectedSteps> SelectSteps(
    CheckpointStore& store, const ModelKey& key,
    const garden::v1::StepSelection& selection) {
  SelectedSteps out;
  ASSIGN_OR_RETURN(out.spec, SpecOf(selection));
  ASSIGN_OR_RETURN(out.model, store.FindModel(key));
  ASSIGN_OR_RETURN(const std::vector<int64_t> steps,
                   out.spec.Resolve(out.model->listing.steps, key.Name()));
  if (const uint32_t limit = MaxStepsPerRequest(); limit > 0 && steps.size() > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the request selects ", steps.size(), " steps of ", key.Name(),
        "; this server allows at most ", limit,
        " per request (--max-steps-per-request): ask for a range or list"));
  }
  ASSIGN_OR_RETURN(out.steps, out.model->LocateAll(steps));
  return out;
}

absl::Status StatsRequest::Open(
    const garden::v1::ModelRef& model, const std::string& tensor,
    const garden::v1::StepSelection& steps, bool exclude_flagged,
    absl::FunctionRef<absl::Status()> parse_options, std::string& what) {
  ASSIGN_OR_RETURN(key_, KeyOf(model));
  what = key_.Name();
  ASSIGN_OR_RETURN(std::string name, TensorOf(tensor));
  RETURN_IF_ERROR(parse_options());
  ASSIGN_OR_RETURN(SelectedSteps selected, SelectSteps(store_, key_, steps));
  model_ = std::move(selected.model);
  steps_ = std::make_shared<const StepTensors>(
      store_, std::move(selected.steps), std::move(name));
  if (exclude_flagged) {
    ASSIGN_OR_RETURN(UnflaggedSteps unflagged,
                     WithoutFlaggedSteps(pool_, steps_, cancelled()));
    if (!unflagged.flagged.empty()) {
      spdlog::info("{}: leaving out flagged steps {}", key_.Name(),
                   FormatSteps(unflagged.flagged));
    }
    steps_ = std::move(unflagged.kept);
  }
  what_ = absl::StrCat(key_.Name(), " ", steps_->tensor(), " ",
                       selected.spec.ToString(), " (", steps_->size(),
                       " steps)");
  return absl::OkStatus();
}

}  // namespace garden

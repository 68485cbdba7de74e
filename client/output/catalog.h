// What the server holds: models (ListModels), the tensors of a checkpoint
// (ListTensors) and the evaluation datasets (ListDatasets). Each renders as
// json or table.
#ifndef GARDEN_CLIENT_OUTPUT_CATALOG_H_
#define GARDEN_CLIENT_OUTPUT_CATALOG_H_

#include <ostream>

#include "client/output/format.h"
#include "garden/v1/garden.pb.h"

namespace garden::client {

// json: {"models": [{suite, size, variant, run, name, repo_id, layout, steps,
// missing_from_schedule}]}, indented by 2. table: one model a line with its
// step count and range.
void RenderModels(const garden::v1::ListModelsResponse& response,
                  Format format, std::ostream& out);

// json: {suite, size, variant, run, step, tensors: [{name, dtype, shape,
// num_bytes, file}]}, indented by 2. table: one tensor a line.
void RenderTensors(const garden::v1::ListTensorsResponse& response,
                   Format format, std::ostream& out);

// json: {"datasets": [{name, examples}]} on one line. table: one dataset a
// line.
void RenderDatasets(const garden::v1::ListDatasetsResponse& response,
                    Format format, std::ostream& out);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_CATALOG_H_

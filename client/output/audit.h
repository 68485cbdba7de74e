// The integrity audit of a suite (Audit).
#ifndef GARDEN_CLIENT_OUTPUT_AUDIT_H_
#define GARDEN_CLIENT_OUTPUT_AUDIT_H_

#include <ostream>

#include "client/output/format.h"
#include "garden/v1/garden.pb.h"

namespace garden::client {

// json: {"findings": [{kind, steps, tensor, detail, score}], steps_checked,
// tensors_checked} on one line. table: a count line, then one finding a
// line with its steps as FormatSteps lists them.
void RenderAudit(const garden::v1::AuditResponse& response, Format format,
                 std::ostream& out);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_AUDIT_H_

#include "client/output/audit.h"

#include <cstdint>
#include <vector>

#include "absl/strings/str_format.h"
#include "client/output/json.h"
#include "common/naming/step_spec.h"
#include "nlohmann/json.hpp"

namespace garden::client {

void RenderAudit(const garden::v1::AuditResponse& response, Format format,
                 std::ostream& out) {
  if (format == Format::kJson) {
    nlohmann::json findings = nlohmann::json::array();
    for (const auto& f : response.findings()) {
      findings.push_back(
          {{"kind", f.kind()},
           {"steps", std::vector<int64_t>(f.steps().begin(), f.steps().end())},
           {"tensor", f.tensor()},
           {"detail", f.detail()},
           {"score", JsonNumber(f.score())}});
    }
    WriteJson({{"findings", findings},
               {"steps_checked", response.steps_checked()},
               {"tensors_checked", response.tensors_checked()}},
              out);
    return;
  }
  out << absl::StrFormat("%d steps, %d tensors checked: %d findings\n",
                         response.steps_checked(), response.tensors_checked(),
                         response.findings_size());
  for (const auto& f : response.findings()) {
    out << absl::StrFormat(
        "%-14s %-24s %s  %s\n", f.kind(),
        FormatSteps(std::vector<int64_t>(f.steps().begin(), f.steps().end())),
        f.tensor(), f.detail());
  }
}

}  // namespace garden::client

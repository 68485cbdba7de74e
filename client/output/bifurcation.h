// Bimodality over training (StreamBifurcation): steps as they arrive, then
// the onset.
#ifndef GARDEN_CLIENT_OUTPUT_BIFURCATION_H_
#define GARDEN_CLIENT_OUTPUT_BIFURCATION_H_

#include <cstdint>
#include <optional>
#include <ostream>

#include "client/output/format.h"
#include "client/output/records.h"
#include "garden/v1/garden.pb.h"

namespace garden::client {

// Step keys: step, bc, modes, mode_heights, dip, bimodal, bandwidth.
//   jsonl: one step a line (the onset is not printed).
//   json:  {"onset": step or null, "steps": [...]}.
//   table: STEP BC DIP BIMODAL MODES, then "onset: step S" or "onset: none".
// Finish once the stream completed.
class BifurcationRenderer {
 public:
  BifurcationRenderer(Format format, std::ostream& out)
      : format_(format), out_(out), records_(format, out) {}

  void Step(const garden::v1::BifurcationStep& step);
  void Summary(const garden::v1::BifurcationSummary& summary);
  void Finish();

 private:
  Format format_;
  std::ostream& out_;
  RecordPrinter records_;
  std::optional<int64_t> onset_;
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_BIFURCATION_H_

// garden envelope: a metric's band across training runs, then each run's
// bifurcation onset.
#ifndef GARDEN_CLIENT_OUTPUT_ENVELOPE_H_
#define GARDEN_CLIENT_OUTPUT_ENVELOPE_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "client/output/format.h"
#include "common/stats/envelope.h"

namespace garden::client {

struct RunOnset {
  std::string run;    // "seed3", or "main" for the main run
  std::string model;  // "pythia-160m-seed3"
  std::optional<int64_t> onset;
};

// Point keys: step, mean, min, max, std, runs; onset keys: run, model,
// onset (null when none).
//   jsonl: one point a line, then one onset a line.
//   json:  {"metric", "tensor", "points": [...], "onsets": [...]}.
//   csv:   step,mean,min,max,std,runs rows; a blank line; run,model,onset
//          rows (onset empty when none).
//   table: STEP MEAN MIN MAX STD RUNS, then RUN MODEL ONSET.
void RenderEnvelope(const std::vector<EnvelopePoint>& points,
                    const std::vector<RunOnset>& onsets, const std::string& metric,
                    const std::string& tensor, Format format, std::ostream& out);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_ENVELOPE_H_

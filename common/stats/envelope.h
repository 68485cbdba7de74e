// The envelope of one metric across training runs (PolyPythias' seeds):
// at each step, the mean, extremes and spread of the runs' values there.
#ifndef GARDEN_COMMON_STATS_ENVELOPE_H_
#define GARDEN_COMMON_STATS_ENVELOPE_H_

#include <cstdint>
#include <map>
#include <vector>

namespace garden {

struct EnvelopePoint {
  int64_t step = 0;
  double mean = 0, min = 0, max = 0;
  // Population standard deviation (divisor: runs), 0 for a single run.
  double std = 0;
  int64_t runs = 0;  // runs with a finite value at this step
};

// One point per step that at least one run has a finite value for, in step
// order; a run without the step (or with NaN or infinity there) is left out
// of that step's point. Sums in long double, the spread two-pass.
std::vector<EnvelopePoint> Envelope(const std::vector<std::map<int64_t, double>>& runs);

}  // namespace garden

#endif  // GARDEN_COMMON_STATS_ENVELOPE_H_

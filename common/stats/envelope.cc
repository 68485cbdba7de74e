#include "common/stats/envelope.h"

#include <algorithm>
#include <cmath>

namespace garden {

std::vector<EnvelopePoint> Envelope(const std::vector<std::map<int64_t, double>>& runs) {
  std::map<int64_t, std::vector<double>> by_step;
  for (const auto& run : runs) {
    for (const auto& [step, value] : run) {
      if (std::isfinite(value)) by_step[step].push_back(value);
    }
  }
  std::vector<EnvelopePoint> points;
  for (const auto& [step, values] : by_step) {
    EnvelopePoint& p = points.emplace_back();
    p.step = step;
    p.runs = static_cast<int64_t>(values.size());
    long double sum = 0;
    for (double v : values) sum += v;
    const long double mean = sum / values.size();
    long double squares = 0;
    for (double v : values) squares += (v - mean) * (v - mean);
    p.mean = static_cast<double>(mean);
    p.std = static_cast<double>(std::sqrt(squares / values.size()));
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    p.min = *lo;
    p.max = *hi;
  }
  return points;
}

}  // namespace garden

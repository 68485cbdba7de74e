#include "common/stats/curve_peak.h"

#include <cmath>

namespace garden {

std::optional<CurvePeak> FindCurvePeak(absl::Span<const double> y) {
  std::optional<size_t> first, last, largest;
  bool rises = false, falls = false;
  for (size_t i = 0; i < y.size(); ++i) {
    if (std::isnan(y[i])) continue;
    if (last) {
      rises = rises || y[i] > y[*last];
      falls = falls || y[i] < y[*last];
    }
    if (!first) first = i;
    last = i;
    if (!largest || y[i] > y[*largest]) largest = i;
  }
  if (!largest) return std::nullopt;
  CurvePeak peak;
  peak.largest = *largest;
  peak.interior = *largest != *first && *largest != *last;
  peak.trend = rises && !falls   ? Trend::kIncreasing
               : falls && !rises ? Trend::kDecreasing
                                 : Trend::kNeither;
  return peak;
}

}  // namespace garden

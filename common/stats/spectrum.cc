#include "common/stats/spectrum.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace garden {

std::optional<PowerLawFit> FitPowerLaw(absl::Span<const double> eigenvalues) {
  std::vector<double> x;
  for (double v : eigenvalues) {
    if (v > 0) x.push_back(v);  // also drops NaN
  }
  std::sort(x.begin(), x.end());
  const size_t n = x.size();
  if (n < 2) return std::nullopt;
  // Suffix sums of ln(x): the tail from candidate i is x[i..n).
  std::vector<double> logs(n + 1, 0.0);
  for (size_t i = n; i-- > 0;) logs[i] = logs[i + 1] + std::log(x[i]);
  std::optional<PowerLawFit> best;
  for (size_t i = 0; i + 1 < n; ++i) {
    if (i > 0 && x[i] == x[i - 1]) continue;  // the same tail as the candidate before
    const double xmin = x[i];
    const auto k = static_cast<double>(n - i);
    const double sum = logs[i] - k * std::log(xmin);
    if (!(sum > 0)) continue;
    const double alpha = 1 + k / sum;
    double d = 0;
    for (size_t j = i; j < n; ++j) {
      const double empirical = static_cast<double>(j - i + 1) / k;
      const double fitted = 1 - std::pow(x[j] / xmin, 1 - alpha);
      d = std::max(d, std::abs(empirical - fitted));
    }
    // Strictly smaller: ties keep the smaller x_min found first.
    if (!best || d < best->ks_distance) {
      best = PowerLawFit{.alpha = alpha, .xmin = xmin, .ks_distance = d, .tail = n - i};
    }
  }
  return best;
}

SpectrumStats ComputeSpectrumStats(absl::Span<const double> sv, int64_t rows, int64_t cols,
                                   double frobenius_squared, double variance) {
  SpectrumStats s;
  const double big = static_cast<double>(std::max(rows, cols));
  const double small = static_cast<double>(std::min(rows, cols));
  double sum = 0;
  for (double v : sv) {
    s.spectral_norm = std::max(s.spectral_norm, v);
    sum += v;
  }
  s.stable_rank = s.spectral_norm > 0 ? frobenius_squared / (s.spectral_norm * s.spectral_norm)
                                      : 0;
  double entropy = 0;
  for (double v : sv) {
    if (v > 0 && sum > 0) entropy -= (v / sum) * std::log(v / sum);
  }
  s.effective_rank = sum > 0 ? std::exp(entropy) : 0;
  std::vector<double> lambda;
  lambda.reserve(sv.size());
  for (double v : sv) lambda.push_back(v * v / big);
  s.fit = FitPowerLaw(lambda);
  const double lambda_max = s.spectral_norm * s.spectral_norm / big;
  s.alpha_weighted = s.fit ? s.fit->alpha * std::log10(lambda_max)
                           : std::numeric_limits<double>::quiet_NaN();
  const double edge = variance * std::pow(1 + std::sqrt(small / big), 2);
  for (double l : lambda) s.num_spikes += l > edge;
  return s;
}

}  // namespace garden

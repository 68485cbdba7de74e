// Spectral statistics of a weight matrix W (rows x cols) from its singular
// values, as WeightWatcher defines them, for `garden layers`:
//   spectral norm   sigma_max
//   stable rank     ||W||_F^2 / sigma_max^2
//   effective rank  exp(H(p)), p_i = sigma_i / sum(sigma)  (Roy & Vetterli 2007)
//   ESD             lambda_i = sigma_i^2 / N, N the larger dimension: the
//                   eigenvalues of W^T W / N
//   alpha           the maximum-likelihood power-law exponent of the
//                   lambda >= x_min, alpha = 1 + k / sum ln(lambda_i / x_min),
//                   x_min the candidate (every lambda but the largest) whose
//                   tail has the smallest Kolmogorov-Smirnov distance
//                   D = max_j |j/k - (1 - (lambda_j/x_min)^(1 - alpha))|,
//                   j = 1..k over the tail sorted ascending; ties go to the
//                   smaller x_min (Clauset, Shalizi & Newman 2009)
//   alpha_weighted  alpha * log10(lambda_max)
//   num_spikes      lambda above the Marchenko-Pastur bulk edge
//                   s^2 (1 + sqrt(M/N))^2, s^2 the entries' variance, M the
//                   smaller dimension
#ifndef GARDEN_COMMON_STATS_SPECTRUM_H_
#define GARDEN_COMMON_STATS_SPECTRUM_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"

namespace garden {

struct PowerLawFit {
  double alpha = 0;
  double xmin = 0;
  double ks_distance = 0;
  uint64_t tail = 0;  // eigenvalues >= xmin
};

// The fit of `eigenvalues` (any order; non-positive and NaN ones dropped).
// Empty when fewer than two positive values remain or every candidate's
// tail is flat (all equal).
std::optional<PowerLawFit> FitPowerLaw(absl::Span<const double> eigenvalues);

struct SpectrumStats {
  double spectral_norm = 0;
  double stable_rank = 0;
  double effective_rank = 0;
  std::optional<PowerLawFit> fit;
  double alpha_weighted = 0;  // NaN without a fit
  uint64_t num_spikes = 0;
};

// From the singular values of a rows x cols matrix whose squared Frobenius
// norm is `frobenius_squared` and whose entries have variance `variance`.
SpectrumStats ComputeSpectrumStats(absl::Span<const double> singular_values, int64_t rows,
                                   int64_t cols, double frobenius_squared, double variance);

}  // namespace garden

#endif  // GARDEN_COMMON_STATS_SPECTRUM_H_

// The defaults of every analysis, in one place: the server applies them to
// fields a request leaves out, the client shows them in its help.
#ifndef GARDEN_COMMON_STATS_ANALYSIS_DEFAULTS_H_
#define GARDEN_COMMON_STATS_ANALYSIS_DEFAULTS_H_

#include <cstdint>

namespace garden {

// Histogram bins (hist, the figures' heatmaps).
inline constexpr uint32_t kDefaultBins = 64;
// Density resolution of the bifurcation analysis: fine enough that the
// Gaussian smoothing, not the binning, decides the modes.
inline constexpr uint32_t kDefaultBifurcationBins = 1024;
// Consecutive bimodal steps that make a bifurcation onset.
inline constexpr uint32_t kDefaultBifurcationPersist = 2;
// A step is bimodal when its two largest modes are separated by a dip of at
// least this fraction of the smaller mode's density.
inline constexpr double kDefaultMinDip = 0.05;
// Robust z of the log MSD rate above which the audit flags a discontinuity.
inline constexpr double kDefaultAuditZ = 3.5;

}  // namespace garden

#endif  // GARDEN_COMMON_STATS_ANALYSIS_DEFAULTS_H_

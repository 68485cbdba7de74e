// Histograms and summaries of floating-point tensors, exact in float64.
//
// 16-bit tensors (F16, BF16) have at most 65536 distinct values, so they are
// first reduced to a table of counts per bit pattern (CodeCounts): one pass
// over the data, after which any histogram range or statistic is computed
// from <= 65536 (value, count) pairs. Wider dtypes are binned directly.
#ifndef GARDEN_COMMON_STATS_HISTOGRAM_H_
#define GARDEN_COMMON_STATS_HISTOGRAM_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/base/cancel.h"
#include "common/formats/dtype.h"
#include "common/stats/moments.h"

namespace garden {

inline constexpr uint32_t kMaxBins = 65536;

// INVALID_ARGUMENT naming the value unless 1 <= bins <= kMaxBins.
absl::Status ValidateBins(int64_t bins);

// Equal-width bins over [lo, hi] with numpy.histogram's edge rule: edges as
// numpy.linspace(lo, hi, bins + 1) computes them, bins half-open [e_i, e_i+1)
// except the last, which also holds hi.
class Binner {
 public:
  // INVALID_ARGUMENT unless 1 <= bins <= kMaxBins, lo and hi finite, lo < hi,
  // and the bins' edges distinct doubles.
  static absl::StatusOr<Binner> Create(double lo, double hi, uint32_t bins);

  // Bin of a value: -1 below lo (or -inf), bins() above hi (or +inf).
  // Not for NaN.
  int64_t Locate(double x) const {
    if (!(x >= lo_)) return -1;
    if (x > hi_) return bins_;
    return LocateInRange(x);
  }

  // Bin of a value known to lie in [lo, hi]; branch-free edge correction.
  int64_t LocateInRange(double x) const {
    int64_t i = static_cast<int64_t>((x - lo_) * norm_);
    i = std::min(i, bins_ - 1);
    // The product can be one ulp off near an edge; the edges decide, as
    // numpy's correction step does.
    i -= static_cast<int64_t>(x < edges_[i]);
    i += static_cast<int64_t>(x >= edges_[i + 1]) &
         static_cast<int64_t>(i != bins_ - 1);
    return i;
  }

  double lo() const { return lo_; }
  double hi() const { return hi_; }
  int64_t bins() const { return bins_; }
  const std::vector<double>& edges() const { return edges_; }

 private:
  Binner(double lo, double hi, uint32_t bins);
  double lo_, hi_, norm_;
  int64_t bins_;
  std::vector<double> edges_;
};

// The automatic range for values spanning [min, max], as numpy chooses it:
// [min, max], widened by 0.5 each side when min == max, and [0, 1] when
// there are no finite values (min > max). A range too narrow to split into
// `bins` distinct edges (where numpy fails) is widened like a zero-width one.
std::pair<double, double> AutoRange(double min, double max, uint32_t bins);

struct Histogram {
  double lo = 0, hi = 0;
  std::vector<uint64_t> counts;
  uint64_t underflow = 0;  // values < lo, -inf included
  uint64_t overflow = 0;   // values > hi, +inf included
};

// Everything about a tensor's values that does not depend on a range.
struct ValueSummary {
  Moments moments;                                       // finite values only
  double min = std::numeric_limits<double>::infinity();  // finite values
  double max = -std::numeric_limits<double>::infinity();
  uint64_t nan = 0, posinf = 0, neginf = 0;

  uint64_t finite() const { return static_cast<uint64_t>(moments.n); }
  void Merge(const ValueSummary& other);
};

// Exact value counts of a 16-bit float tensor (F16 or BF16).
class CodeCounts {
 public:
  // One-shot counting of a whole tensor held in memory.
  static absl::StatusOr<CodeCounts> Count(absl::Span<const uint8_t> bytes,
                                          DType dtype,
                                          const CancelFlag* cancel = nullptr);

  ValueSummary Summarize() const;
  Histogram Bin(const Binner& binner) const;
  DType dtype() const { return dtype_; }
  size_t distinct() const { return codes_.size(); }

 private:
  friend class CodeCounter;
  DType dtype_ = DType::kF16;
  std::vector<uint16_t> codes_;   // bit patterns present, ascending
  std::vector<uint64_t> counts_;  // occurrences of each
};

// Builds CodeCounts from a tensor's bytes fed in chunks of whole elements.
class CodeCounter {
 public:
  // INVALID_ARGUMENT unless dtype is F16 or BF16.
  static absl::StatusOr<CodeCounter> Create(DType dtype);

  absl::Status Add(absl::Span<const uint8_t> bytes,
                   const CancelFlag* cancel = nullptr);
  CodeCounts Finish();

 private:
  explicit CodeCounter(DType dtype);
  void Fold();

  DType dtype_;
  // Interleaved uint32 tables halve the store-to-load stalls on runs of
  // equal values; folded into 64-bit totals before they can wrap.
  std::vector<uint32_t> tables_;
  std::vector<uint64_t> totals_;
  uint64_t since_fold_ = 0;
};

// Decodes one element of a 16-bit float dtype to double, exactly.
double DecodeF16(uint16_t bits);
double DecodeBF16(uint16_t bits);

// Decodes n little-endian elements of an analysable float dtype (F64, F32,
// F16, BF16) to doubles, exactly.
void DecodeInto(const uint8_t* p, size_t n, DType dtype, double* out);

// The summary and, when a binner is given, the histogram of a tensor of any
// analysable float dtype, from its bytes fed in chunks of whole elements.
struct ScanResult {
  ValueSummary summary;
  std::optional<Histogram> histogram;
};

class ValueScanner {
 public:
  // FAILED_PRECONDITION for dtypes that are not analysable floats. The
  // binner, if any, must outlive the scanner.
  static absl::StatusOr<ValueScanner> Create(DType dtype, const Binner* binner);

  absl::Status Add(absl::Span<const uint8_t> bytes,
                   const CancelFlag* cancel = nullptr);
  ScanResult Finish();

 private:
  ValueScanner(DType dtype, const Binner* binner);

  DType dtype_;
  const Binner* binner_;
  ScanResult result_;
};

// One-shot ValueScanner over a whole tensor held in memory.
absl::StatusOr<ScanResult> ScanValues(absl::Span<const uint8_t> bytes,
                                      DType dtype, const Binner* binner,
                                      const CancelFlag* cancel = nullptr);

}  // namespace garden

#endif  // GARDEN_COMMON_STATS_HISTOGRAM_H_

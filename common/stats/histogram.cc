#include "common/stats/histogram.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/number_text.h"
#include "common/base/status.h"

namespace garden {
namespace {

// Elements scanned between two looks at the cancel flag.
constexpr size_t kCancelCheckElements = size_t{1} << 20;

absl::Status CancelledError() { return absl::CancelledError("scan cancelled"); }

template <typename T>
T LoadLE(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // little-endian hosts only (x86-64, arm64)
  return v;
}

absl::Status CheckAnalysable(absl::Span<const uint8_t> bytes, DType dtype) {
  if (!IsAnalysableFloat(dtype)) {
    return absl::FailedPreconditionError(
        absl::StrCat("dtype ", ToAbsl(DTypeName(dtype)),
                     " is not analysable (F64, F32, F16 and BF16 are)"));
  }
  if (bytes.size() % DTypeSize(dtype) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(bytes.size(), " bytes is not a whole number of ",
                     ToAbsl(DTypeName(dtype)), " elements"));
  }
  return absl::OkStatus();
}

}  // namespace

double DecodeF16(uint16_t bits) {
  const uint64_t sign = static_cast<uint64_t>(bits >> 15) << 63;
  const uint32_t exponent = (bits >> 10) & 0x1f;
  const uint64_t mantissa = bits & 0x3ff;
  uint64_t wide;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in a double.
    const double value = static_cast<double>(mantissa) * 0x1p-24;
    std::memcpy(&wide, &value, sizeof wide);
    wide |= sign;
  } else if (exponent == 0x1f) {
    wide = sign | (uint64_t{0x7ff} << 52) | (mantissa << 42);  // inf, NaN
  } else {
    wide = sign | (uint64_t{exponent - 15 + 1023} << 52) | (mantissa << 42);
  }
  double out;
  std::memcpy(&out, &wide, sizeof out);
  return out;
}

double DecodeBF16(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

// ---------------------------------------------------------------- Binner

absl::Status ValidateBins(int64_t bins) {
  if (bins < 1 || bins > kMaxBins) {
    return absl::InvalidArgumentError(
        absl::StrCat("bins must be in [1, ", kMaxBins, "], got ", bins));
  }
  return absl::OkStatus();
}

absl::StatusOr<Binner> Binner::Create(double lo, double hi, uint32_t bins) {
  RETURN_IF_ERROR(ValidateBins(bins));
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat("range must be finite, got ", ExactDouble(lo), ":", ExactDouble(hi)));
  }
  if (!(lo < hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat("range needs lo < hi, got ", ExactDouble(lo), ":", ExactDouble(hi)));
  }
  if (!std::isfinite(hi - lo)) {
    return absl::InvalidArgumentError(
        absl::StrCat("range width overflows a double: ", ExactDouble(lo), ":",
                     ExactDouble(hi)));
  }
  Binner binner(lo, hi, bins);
  // Subnormal widths, or widths below the spacing of doubles near lo, give
  // an infinite scale or repeated edges: no value could be placed reliably.
  bool increasing = std::isfinite(binner.norm_);
  for (uint32_t i = 0; increasing && i < bins; ++i) {
    increasing = binner.edges_[i] < binner.edges_[i + 1];
  }
  if (!increasing) {
    return absl::InvalidArgumentError(
        absl::StrCat("range ", lo, ":", hi, " is too narrow for ", bins,
                     " bins: their edges would not be distinct doubles"));
  }
  return binner;
}

Binner::Binner(double lo, double hi, uint32_t bins)
    : lo_(lo), hi_(hi), norm_(bins / (hi - lo)), bins_(bins) {
  // numpy.linspace: i * step + start, the last edge set to stop exactly.
  const double step = (hi - lo) / bins;
  edges_.resize(bins + 1);
  for (uint32_t i = 0; i <= bins; ++i) edges_[i] = i * step + lo;
  edges_[bins] = hi;
}

std::pair<double, double> AutoRange(double min, double max, uint32_t bins) {
  if (min > max) return {0.0, 1.0};
  if (min == max || !Binner::Create(min, max, bins).ok()) {
    return {min - 0.5, max + 0.5};
  }
  return {min, max};
}

// ---------------------------------------------------------- ValueSummary

void ValueSummary::Merge(const ValueSummary& o) {
  moments.Merge(o.moments);
  min = std::min(min, o.min);
  max = std::max(max, o.max);
  nan += o.nan;
  posinf += o.posinf;
  neginf += o.neginf;
}

// ------------------------------------------------------------ CodeCounts

absl::StatusOr<CodeCounter> CodeCounter::Create(DType dtype) {
  if (dtype != DType::kF16 && dtype != DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "value counts need F16 or BF16, got ", ToAbsl(DTypeName(dtype))));
  }
  return CodeCounter(dtype);
}

CodeCounter::CodeCounter(DType dtype)
    : dtype_(dtype), tables_(2 * 65536, 0), totals_(65536, 0) {}

void CodeCounter::Fold() {
  for (size_t c = 0; c < 65536; ++c) {
    totals_[c] += uint64_t{tables_[c]} + tables_[65536 + c];
  }
  std::fill(tables_.begin(), tables_.end(), 0);
  since_fold_ = 0;
}

absl::Status CodeCounter::Add(absl::Span<const uint8_t> bytes,
                              const CancelFlag* cancel) {
  RETURN_IF_ERROR(CheckAnalysable(bytes, dtype_));
  const size_t n = bytes.size() / 2;
  const uint8_t* data = bytes.data();
  uint32_t* t0 = tables_.data();
  uint32_t* t1 = tables_.data() + 65536;
  constexpr uint64_t kFoldEvery = uint64_t{1} << 31;
  for (size_t start = 0; start < n; start += kCancelCheckElements) {
    if (IsCancelled(cancel)) return CancelledError();
    const size_t end = std::min(n, start + kCancelCheckElements);
    size_t i = start;
    for (; i + 4 <= end; i += 4) {
      const uint64_t w = LoadLE<uint64_t>(data + 2 * i);
      ++t0[w & 0xffff];
      ++t1[(w >> 16) & 0xffff];
      ++t0[(w >> 32) & 0xffff];
      ++t1[w >> 48];
    }
    for (; i < end; ++i) ++t0[LoadLE<uint16_t>(data + 2 * i)];
    since_fold_ += end - start;
    if (since_fold_ >= kFoldEvery) Fold();
  }
  return absl::OkStatus();
}

CodeCounts CodeCounter::Finish() {
  Fold();
  CodeCounts out;
  out.dtype_ = dtype_;
  for (size_t c = 0; c < 65536; ++c) {
    if (totals_[c] == 0) continue;
    out.codes_.push_back(static_cast<uint16_t>(c));
    out.counts_.push_back(totals_[c]);
  }
  return out;
}

absl::StatusOr<CodeCounts> CodeCounts::Count(absl::Span<const uint8_t> bytes,
                                             DType dtype,
                                             const CancelFlag* cancel) {
  ASSIGN_OR_RETURN(CodeCounter counter, CodeCounter::Create(dtype));
  RETURN_IF_ERROR(counter.Add(bytes, cancel));
  return counter.Finish();
}

ValueSummary CodeCounts::Summarize() const {
  ValueSummary s;
  std::vector<double> values, weights;
  values.reserve(codes_.size());
  weights.reserve(codes_.size());
  for (size_t i = 0; i < codes_.size(); ++i) {
    const double x =
        dtype_ == DType::kF16 ? DecodeF16(codes_[i]) : DecodeBF16(codes_[i]);
    if (std::isnan(x)) {
      s.nan += counts_[i];
    } else if (std::isinf(x)) {
      (x > 0 ? s.posinf : s.neginf) += counts_[i];
    } else {
      values.push_back(x);
      weights.push_back(static_cast<double>(counts_[i]));
      s.min = std::min(s.min, x);
      s.max = std::max(s.max, x);
    }
  }
  s.moments = Moments::Of(values.data(), weights.data(), values.size());
  return s;
}

Histogram CodeCounts::Bin(const Binner& binner) const {
  Histogram h;
  h.lo = binner.lo();
  h.hi = binner.hi();
  h.counts.assign(binner.bins(), 0);
  for (size_t i = 0; i < codes_.size(); ++i) {
    const double x =
        dtype_ == DType::kF16 ? DecodeF16(codes_[i]) : DecodeBF16(codes_[i]);
    if (std::isnan(x)) continue;
    const int64_t b = binner.Locate(x);
    if (b < 0) {
      h.underflow += counts_[i];
    } else if (b >= binner.bins()) {
      h.overflow += counts_[i];
    } else {
      h.counts[b] += counts_[i];
    }
  }
  return h;
}

// ------------------------------------------------------------ ScanValues

absl::StatusOr<ValueScanner> ValueScanner::Create(DType dtype,
                                                  const Binner* binner) {
  RETURN_IF_ERROR(CheckAnalysable({}, dtype));
  return ValueScanner(dtype, binner);
}

ValueScanner::ValueScanner(DType dtype, const Binner* binner)
    : dtype_(dtype), binner_(binner) {
  if (binner_ != nullptr) {
    result_.histogram.emplace();
    result_.histogram->lo = binner_->lo();
    result_.histogram->hi = binner_->hi();
    result_.histogram->counts.assign(binner_->bins(), 0);
  }
}

namespace {

// Decodes n elements of one dtype into doubles; the dtype is fixed per call
// so the loop has no per-element dispatch.
template <typename Decode>
void DecodeRun(const uint8_t* p, size_t n, size_t item, double* out,
               Decode decode) {
  for (size_t i = 0; i < n; ++i) out[i] = decode(p + i * item);
}

}  // namespace

void DecodeInto(const uint8_t* p, size_t n, DType dtype, double* out) {
  switch (dtype) {
    case DType::kF64:
      std::memcpy(out, p, n * sizeof(double));
      return;
    case DType::kF32:
      return DecodeRun(p, n, 4, out, [](const uint8_t* q) -> double {
        return LoadLE<float>(q);
      });
    case DType::kF16: {
      // Every half is a float: one table lookup instead of bit surgery.
      static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (uint32_t c = 0; c < 65536; ++c) {
          t[c] = static_cast<float>(DecodeF16(static_cast<uint16_t>(c)));
        }
        return t;
      }();
      const float* lookup = table.data();
      return DecodeRun(p, n, 2, out, [lookup](const uint8_t* q) -> double {
        return lookup[LoadLE<uint16_t>(q)];
      });
    }
    case DType::kBF16:
      return DecodeRun(p, n, 2, out, [](const uint8_t* q) {
        return DecodeBF16(LoadLE<uint16_t>(q));
      });
    default:
      return;  // refused by CheckAnalysable
  }
}

absl::Status ValueScanner::Add(absl::Span<const uint8_t> bytes,
                               const CancelFlag* cancel) {
  RETURN_IF_ERROR(CheckAnalysable(bytes, dtype_));
  const size_t item = DTypeSize(dtype_);
  const size_t n = bytes.size() / item;
  ValueSummary& s = result_.summary;
  Histogram* h = result_.histogram ? &*result_.histogram : nullptr;

  // Chunks small enough to stay in cache: decoded once, then passed over for
  // non-finite values, extremes, bins and (twice) moments.
  constexpr size_t kChunk = 4096;
  std::array<double, kChunk> values;
  for (size_t start = 0; start < n; start += kChunk) {
    if (start % kCancelCheckElements == 0 && IsCancelled(cancel)) {
      return CancelledError();
    }
    const size_t count = std::min(n - start, kChunk);
    DecodeInto(bytes.data() + start * item, count, dtype_, values.data());
    // Non-finite values are rare: move them out, keeping the finite ones.
    size_t k = 0;
    for (size_t i = 0; i < count; ++i) {
      const double x = values[i];
      if (std::isfinite(x)) {
        values[k++] = x;
      } else if (std::isnan(x)) {
        ++s.nan;
      } else if (x > 0) {
        ++s.posinf;
        if (h != nullptr) ++h->overflow;
      } else {
        ++s.neginf;
        if (h != nullptr) ++h->underflow;
      }
    }
    double lo[4] = {s.min, s.min, s.min, s.min};
    double hi[4] = {s.max, s.max, s.max, s.max};
    size_t i = 0;
    for (; i + 4 <= k; i += 4) {
      for (size_t l = 0; l < 4; ++l) {
        lo[l] = std::min(lo[l], values[i + l]);
        hi[l] = std::max(hi[l], values[i + l]);
      }
    }
    for (; i < k; ++i) {
      lo[0] = std::min(lo[0], values[i]);
      hi[0] = std::max(hi[0], values[i]);
    }
    s.min = std::min(std::min(lo[0], lo[1]), std::min(lo[2], lo[3]));
    s.max = std::max(std::max(hi[0], hi[1]), std::max(hi[2], hi[3]));
    if (h != nullptr) {
      const double range_lo = binner_->lo(), range_hi = binner_->hi();
      uint64_t* counts = h->counts.data();
      for (size_t i = 0; i < k; ++i) {
        const double x = values[i];
        if (x < range_lo) {
          ++h->underflow;
        } else if (x > range_hi) {
          ++h->overflow;
        } else {
          ++counts[binner_->LocateInRange(x)];
        }
      }
    }
    s.moments.Merge(Moments::Of(values.data(), nullptr, k));
  }
  return absl::OkStatus();
}

ScanResult ValueScanner::Finish() { return std::move(result_); }

absl::StatusOr<ScanResult> ScanValues(absl::Span<const uint8_t> bytes,
                                      DType dtype, const Binner* binner,
                                      const CancelFlag* cancel) {
  ASSIGN_OR_RETURN(ValueScanner scanner, ValueScanner::Create(dtype, binner));
  RETURN_IF_ERROR(scanner.Add(bytes, cancel));
  return scanner.Finish();
}

}  // namespace garden

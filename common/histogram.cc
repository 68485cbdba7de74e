#include "common/histogram.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"

namespace garden {
namespace {

// Elements scanned between two looks at the cancel flag.
constexpr size_t kCancelCheckElements = size_t{1} << 20;

bool Cancelled(const CancelFlag* cancel) {
  return cancel != nullptr && cancel->load(std::memory_order_relaxed);
}

absl::Status CancelledError() {
  return absl::CancelledError("scan cancelled");
}

template <typename T>
T LoadLE(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // little-endian hosts only (x86-64, arm64)
  return v;
}

double DecodeAt(const uint8_t* p, DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return LoadLE<double>(p);
    case DType::kF32:
      return LoadLE<float>(p);
    case DType::kF16:
      return DecodeF16(LoadLE<uint16_t>(p));
    case DType::kBF16:
      return DecodeBF16(LoadLE<uint16_t>(p));
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
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
  const int sign = bits >> 15;
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  double value;
  if (exponent == 0) {
    value = std::ldexp(static_cast<double>(mantissa), -24);  // subnormal
  } else if (exponent == 0x1f) {
    value = mantissa ? std::numeric_limits<double>::quiet_NaN()
                     : std::numeric_limits<double>::infinity();
  } else {
    value = std::ldexp(static_cast<double>(mantissa | 0x400), exponent - 25);
  }
  return sign ? -value : value;
}

double DecodeBF16(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

// ---------------------------------------------------------------- Binner

absl::StatusOr<Binner> Binner::Create(double lo, double hi, uint32_t bins) {
  if (bins < 1 || bins > kMaxBins) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bins must be in [1, ", kMaxBins, "], got ", bins));
  }
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat("range must be finite, got ", lo, ":", hi));
  }
  if (!(lo < hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat("range needs lo < hi, got ", lo, ":", hi));
  }
  if (!std::isfinite(hi - lo)) {
    return absl::InvalidArgumentError(
        absl::StrCat("range width overflows a double: ", lo, ":", hi));
  }
  return Binner(lo, hi, bins);
}

Binner::Binner(double lo, double hi, uint32_t bins)
    : lo_(lo), hi_(hi), norm_(bins / (hi - lo)), bins_(bins) {
  // numpy.linspace: i * step + start, the last edge set to stop exactly.
  const double step = (hi - lo) / bins;
  edges_.resize(bins + 1);
  for (uint32_t i = 0; i <= bins; ++i) edges_[i] = i * step + lo;
  edges_[bins] = hi;
}

std::pair<double, double> AutoRange(double min, double max) {
  if (min > max) return {0.0, 1.0};
  if (min == max) return {min - 0.5, max + 0.5};
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

absl::StatusOr<CodeCounts> CodeCounts::Count(absl::Span<const uint8_t> bytes,
                                             DType dtype,
                                             const CancelFlag* cancel) {
  if (dtype != DType::kF16 && dtype != DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CodeCounts needs F16 or BF16, got ", ToAbsl(DTypeName(dtype))));
  }
  if (auto s = CheckAnalysable(bytes, dtype); !s.ok()) return s;
  const size_t n = bytes.size() / 2;
  const uint8_t* data = bytes.data();

  // Two interleaved uint32 tables halve the store-to-load stalls on runs of
  // equal values; they are folded into 64-bit totals before they can wrap.
  std::vector<uint32_t> table(2 * 65536, 0);
  std::vector<uint64_t> totals(65536, 0);
  uint32_t* t0 = table.data();
  uint32_t* t1 = table.data() + 65536;
  constexpr size_t kFoldEvery = size_t{1} << 31;
  size_t since_fold = 0;
  auto fold = [&] {
    for (size_t c = 0; c < 65536; ++c) totals[c] += uint64_t{t0[c]} + t1[c];
    std::fill(table.begin(), table.end(), 0);
    since_fold = 0;
  };

  for (size_t start = 0; start < n; start += kCancelCheckElements) {
    if (Cancelled(cancel)) return CancelledError();
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
    since_fold += end - start;
    if (since_fold >= kFoldEvery) fold();
  }
  fold();

  CodeCounts out;
  out.dtype_ = dtype;
  for (size_t c = 0; c < 65536; ++c) {
    if (totals[c] == 0) continue;
    out.codes_.push_back(static_cast<uint16_t>(c));
    out.counts_.push_back(totals[c]);
  }
  return out;
}

ValueSummary CodeCounts::Summarize() const {
  ValueSummary s;
  std::vector<double> values, weights;
  values.reserve(codes_.size());
  weights.reserve(codes_.size());
  for (size_t i = 0; i < codes_.size(); ++i) {
    const double x = dtype_ == DType::kF16 ? DecodeF16(codes_[i])
                                           : DecodeBF16(codes_[i]);
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
    const double x = dtype_ == DType::kF16 ? DecodeF16(codes_[i])
                                           : DecodeBF16(codes_[i]);
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

absl::StatusOr<ScanResult> ScanValues(absl::Span<const uint8_t> bytes,
                                      DType dtype, const Binner* binner,
                                      const CancelFlag* cancel) {
  if (auto s = CheckAnalysable(bytes, dtype); !s.ok()) return s;
  const size_t item = DTypeSize(dtype);
  const size_t n = bytes.size() / item;
  ScanResult result;
  if (binner != nullptr) {
    result.histogram.emplace();
    result.histogram->lo = binner->lo();
    result.histogram->hi = binner->hi();
    result.histogram->counts.assign(binner->bins(), 0);
  }
  ValueSummary& s = result.summary;

  // Chunks small enough to stay in cache: decoded once, then read twice
  // (mean, centred powers) by Moments::Of.
  constexpr size_t kChunk = 4096;
  std::array<double, kChunk> finite;
  for (size_t start = 0; start < n; start += kChunk) {
    if (start % kCancelCheckElements == 0 && Cancelled(cancel)) {
      return CancelledError();
    }
    const size_t end = std::min(n, start + kChunk);
    size_t k = 0;
    for (size_t i = start; i < end; ++i) {
      const double x = DecodeAt(bytes.data() + i * item, dtype);
      if (std::isnan(x)) {
        ++s.nan;
        continue;
      }
      if (binner != nullptr) {
        const int64_t b = binner->Locate(x);
        if (b < 0) {
          ++result.histogram->underflow;
        } else if (b >= binner->bins()) {
          ++result.histogram->overflow;
        } else {
          ++result.histogram->counts[b];
        }
      }
      if (std::isinf(x)) {
        ++(x > 0 ? s.posinf : s.neginf);
        continue;
      }
      finite[k++] = x;
      s.min = std::min(s.min, x);
      s.max = std::max(s.max, x);
    }
    s.moments.Merge(Moments::Of(finite.data(), nullptr, k));
  }
  return result;
}

}  // namespace garden

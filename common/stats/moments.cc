#include "common/stats/moments.h"

#include <cmath>
#include <limits>

namespace garden {

namespace {

// Two passes over values already in cache: the mean, then centred powers.
// Weight is a functor so the unweighted case compiles to plain sums; four
// independent partial sums per quantity keep the adders busy instead of
// waiting on one long dependency chain.
template <typename Weight>
Moments TwoPass(const double* values, size_t count, Weight weight) {
  constexpr size_t kLanes = 4;
  Moments m;
  double n[kLanes] = {}, sum[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) {
      n[l] += weight(i + l);
      sum[l] += weight(i + l) * values[i + l];
    }
  }
  for (; i < count; ++i) {
    n[0] += weight(i);
    sum[0] += weight(i) * values[i];
  }
  const double total = (n[0] + n[1]) + (n[2] + n[3]);
  if (total == 0) return m;
  m.n = total;
  m.mean = ((sum[0] + sum[1]) + (sum[2] + sum[3])) / total;
  double m2[kLanes] = {}, m3[kLanes] = {}, m4[kLanes] = {};
  auto accumulate = [&](size_t lane, size_t at) {
    const double d = values[at] - m.mean;
    const double d2 = d * d;
    m2[lane] += weight(at) * d2;
    m3[lane] += weight(at) * d2 * d;
    m4[lane] += weight(at) * d2 * d2;
  };
  for (i = 0; i + kLanes <= count; i += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) accumulate(l, i + l);
  }
  for (; i < count; ++i) accumulate(0, i);
  m.m2 = (m2[0] + m2[1]) + (m2[2] + m2[3]);
  m.m3 = (m3[0] + m3[1]) + (m3[2] + m3[3]);
  m.m4 = (m4[0] + m4[1]) + (m4[2] + m4[3]);
  return m;
}

}  // namespace

Moments Moments::Of(const double* values, const double* weights, size_t count) {
  if (weights == nullptr) {
    return TwoPass(values, count, [](size_t) { return 1.0; });
  }
  return TwoPass(values, count, [weights](size_t i) { return weights[i]; });
}

void Moments::Merge(const Moments& o) {
  if (o.n == 0) return;
  if (n == 0) {
    *this = o;
    return;
  }
  const double na = n, nb = o.n, nt = na + nb;
  const double delta = o.mean - mean;
  const double d2 = delta * delta, d3 = d2 * delta, d4 = d2 * d2;
  const double new_m4 =
      m4 + o.m4 +
      d4 * na * nb * (na * na - na * nb + nb * nb) / (nt * nt * nt) +
      6 * d2 * (na * na * o.m2 + nb * nb * m2) / (nt * nt) +
      4 * delta * (na * o.m3 - nb * m3) / nt;
  const double new_m3 = m3 + o.m3 + d3 * na * nb * (na - nb) / (nt * nt) +
                        3 * delta * (na * o.m2 - nb * m2) / nt;
  const double new_m2 = m2 + o.m2 + d2 * na * nb / nt;
  mean += delta * nb / nt;
  m2 = new_m2;
  m3 = new_m3;
  m4 = new_m4;
  n = nt;
}

double Moments::Variance() const {
  return n > 0 ? m2 / n : std::numeric_limits<double>::quiet_NaN();
}

double Moments::StdDev() const { return std::sqrt(Variance()); }

double Moments::Skewness() const {
  if (n == 0 || m2 == 0) return std::numeric_limits<double>::quiet_NaN();
  const double var = m2 / n;
  return (m3 / n) / (var * std::sqrt(var));
}

double Moments::ExcessKurtosis() const {
  if (n == 0 || m2 == 0) return std::numeric_limits<double>::quiet_NaN();
  const double var = m2 / n;
  return (m4 / n) / (var * var) - 3.0;
}

}  // namespace garden

#include "common/moments.h"

#include <cmath>
#include <limits>

namespace garden {

namespace {

// Two passes over values already in cache: the mean, then centred powers.
// Weight is a functor so the unweighted case compiles to plain sums.
template <typename Weight>
Moments TwoPass(const double* values, size_t count, Weight weight) {
  Moments m;
  double n = 0, sum = 0;
  for (size_t i = 0; i < count; ++i) {
    n += weight(i);
    sum += weight(i) * values[i];
  }
  if (n == 0) return m;
  m.n = n;
  m.mean = sum / n;
  double m2 = 0, m3 = 0, m4 = 0;
  for (size_t i = 0; i < count; ++i) {
    const double d = values[i] - m.mean;
    const double d2 = d * d;
    m2 += weight(i) * d2;
    m3 += weight(i) * d2 * d;
    m4 += weight(i) * d2 * d2;
  }
  m.m2 = m2;
  m.m3 = m3;
  m.m4 = m4;
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

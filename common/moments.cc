#include "common/moments.h"

#include <cmath>
#include <limits>

namespace garden {

Moments Moments::Of(const double* values, const double* weights,
                    size_t count) {
  Moments m;
  double n = 0, sum = 0;
  for (size_t i = 0; i < count; ++i) {
    const double w = weights ? weights[i] : 1.0;
    n += w;
    sum += w * values[i];
  }
  if (n == 0) return m;
  m.n = n;
  m.mean = sum / n;
  for (size_t i = 0; i < count; ++i) {
    const double w = weights ? weights[i] : 1.0;
    const double d = values[i] - m.mean;
    const double d2 = d * d;
    m.m2 += w * d2;
    m.m3 += w * d2 * d;
    m.m4 += w * d2 * d2;
  }
  return m;
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
  const double new_m4 = m4 + o.m4 +
                        d4 * na * nb * (na * na - na * nb + nb * nb) /
                            (nt * nt * nt) +
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

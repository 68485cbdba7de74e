#include "common/base/number_text.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace garden {

std::string ExactDouble(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  // The fewest %g digits that strtod reads back as x.
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

}  // namespace garden

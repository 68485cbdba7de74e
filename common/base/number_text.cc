#include "common/base/number_text.h"

#include <charconv>
#include <cmath>

namespace garden {

std::string ExactDouble(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buffer[32];
  // Without a format, to_chars gives the shortest text that round-trips.
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), x);
  return std::string(buffer, end);
}

}  // namespace garden

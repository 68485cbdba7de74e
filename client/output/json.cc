#include "client/output/json.h"

#include <cmath>

namespace garden::client {

nlohmann::json JsonNumber(double x) {
  if (!std::isfinite(x)) return nullptr;
  return x;
}

std::string DumpJson(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

void WriteJson(const nlohmann::json& j, std::ostream& out, int indent) {
  out << DumpJson(j, indent) << "\n" << std::flush;
}

}  // namespace garden::client

#include "client/output/csv.h"

#include "common/base/number_text.h"

namespace garden::client {

std::string CsvNumber(double x) { return ExactDouble(x); }

}  // namespace garden::client

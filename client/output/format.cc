#include "client/output/format.h"

namespace garden::client {

Format FormatFromName(std::string_view name) {
  if (name == "json") return Format::kJson;
  if (name == "jsonl") return Format::kJsonl;
  if (name == "csv") return Format::kCsv;
  if (name == "text") return Format::kText;
  return Format::kTable;
}

}  // namespace garden::client

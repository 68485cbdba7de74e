#include "client/output/records.h"

#include <utility>

#include "client/output/json.h"

namespace garden::client {

void RecordPrinter::Print(nlohmann::json record,
                          absl::FunctionRef<RecordText()> text) {
  switch (format_) {
    case Format::kJsonl:
      WriteJson(record, out_);
      return;
    case Format::kJson:
      kept_.push_back(std::move(record));
      return;
    default:
      break;
  }
  const RecordText lines = text();
  if (!header_written_) out_ << lines.header;
  header_written_ = true;
  out_ << lines.row << std::flush;
}

nlohmann::json RecordPrinter::TakeKept() {
  return std::exchange(kept_, nlohmann::json::array());
}

}  // namespace garden::client

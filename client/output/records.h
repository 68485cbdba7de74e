// What every streaming renderer does with one record: print it (and flush)
// as soon as it arrives, or keep it for the document written at the end.
#ifndef GARDEN_CLIENT_OUTPUT_RECORDS_H_
#define GARDEN_CLIENT_OUTPUT_RECORDS_H_

#include <ostream>
#include <string>

#include "absl/functional/function_ref.h"
#include "client/output/format.h"
#include "nlohmann/json.hpp"

namespace garden::client {

// A record as csv or table lines, newlines included.
struct RecordText {
  std::string header;  // printed before the first row only
  std::string row;
};

class RecordPrinter {
 public:
  RecordPrinter(Format format, std::ostream& out)
      : format_(format), out_(out) {}

  // jsonl: writes `record` on its line. json: keeps it (see TakeKept).
  // csv and table: writes text()'s header before the first row, then its
  // row; text is called for those formats only.
  void Print(nlohmann::json record, absl::FunctionRef<RecordText()> text);

  // json: the records kept since the last call, as an array.
  nlohmann::json TakeKept();

 private:
  Format format_;
  std::ostream& out_;
  bool header_written_ = false;
  nlohmann::json kept_ = nlohmann::json::array();
};

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_RECORDS_H_

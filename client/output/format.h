// The output formats of the garden commands. Each command offers a subset
// (its --format choices); every renderer writes one format to a stream.
#ifndef GARDEN_CLIENT_OUTPUT_FORMAT_H_
#define GARDEN_CLIENT_OUTPUT_FORMAT_H_

#include <string_view>

namespace garden::client {

enum class Format {
  kJson,   // one JSON document once the response is complete
  kJsonl,  // one JSON object per record, as each arrives
  kCsv,    // a header row, then one row per record
  kTable,  // aligned columns for people
  kText,   // generate: the text itself, as it arrives
};

// The format a --format value names: "json", "jsonl", "csv", "table" or
// "text". Anything else (CLI11 has already refused it) is kTable.
Format FormatFromName(std::string_view name);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_FORMAT_H_

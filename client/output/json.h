// JSON as every garden command writes it.
#ifndef GARDEN_CLIENT_OUTPUT_JSON_H_
#define GARDEN_CLIENT_OUTPUT_JSON_H_

#include <ostream>
#include <string>

#include "nlohmann/json.hpp"

namespace garden::client {

// `x`, or null for NaN and the infinities, which JSON cannot hold.
nlohmann::json JsonNumber(double x);

// `j` as text, on one line (indent -1) or indented. Strings that are not
// UTF-8 (a model's token pieces can split a character) have their bad bytes
// replaced by U+FFFD instead of throwing.
std::string DumpJson(const nlohmann::json& j, int indent = -1);

// DumpJson, a newline and a flush: a jsonl record as soon as it arrives, or
// a whole document.
void WriteJson(const nlohmann::json& j, std::ostream& out, int indent = -1);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_JSON_H_

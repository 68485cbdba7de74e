// Numbers in CSV output.
#ifndef GARDEN_CLIENT_OUTPUT_CSV_H_
#define GARDEN_CLIENT_OUTPUT_CSV_H_

#include <string>

namespace garden::client {

// The shortest text that reads back (strtod) as the same double: "0.1", not
// "0.10000000000000001"; "nan", "inf" and "-inf" for the rest.
std::string CsvNumber(double x);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_CSV_H_

// How messages print numbers a user gave: doubles with the fewest digits
// that read back as the same value, so "top_p must be in (0, 1]" never says
// "got 1" of 1.0000001 (absl::StrCat keeps 6 significant digits).
#ifndef GARDEN_COMMON_BASE_NUMBER_TEXT_H_
#define GARDEN_COMMON_BASE_NUMBER_TEXT_H_

#include <string>

namespace garden {

// "1.0000001", "0.1", "1e-300", "inf", "-inf", "nan" (the %g forms; CSV
// output prints numbers the same way).
std::string ExactDouble(double x);

}  // namespace garden

#endif  // GARDEN_COMMON_BASE_NUMBER_TEXT_H_

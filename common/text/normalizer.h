// Step 2 of the tokenizer's pipeline (common/text/tokenizer.h): Unicode NFC,
// for files whose normalizer asks for it, and the map from positions of a
// transformed text back to its source that EncodeWithOffsets needs (for NFC
// and for the UTF-8 repair before it). Internal to garden_text.
#ifndef GARDEN_COMMON_TEXT_NORMALIZER_H_
#define GARDEN_COMMON_TEXT_NORMALIZER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/utf8.h"

namespace garden::tokenizer_internal {

// A stretch of a transformed text that differs from its source:
// out[out_begin, out_end) stands for in[in_begin, in_end). Outside the
// stretches the two texts agree byte for byte. A UTF-8 repair
// (ReplaceInvalidUtf8) records the same.
using Region = Utf8Repair;

// Maps position `p` of the transformed text back to the source; `regions`
// are in order. A token beginning (or, with `is_end`, ending) inside a
// changed stretch gets the stretch's beginning (or end).
size_t MapBack(const std::vector<Region>& regions, size_t p, bool is_end);

// Working memory for NFC, reused from call to call.
struct NfcScratch {
  std::vector<int32_t> code_points;
  std::string run;
};

// NFC of a short valid UTF-8 string, appended to `out`.
void AppendNfc(std::string_view s, NfcScratch& scratch, std::string* out);

// NFC of a valid UTF-8 text, into *out; false (and *out untouched) if NFC
// leaves the text as it is. `regions` (if not null) receives the changed
// stretches, each as small as a grapheme cluster where that is exact.
bool NormalizeNfc(std::string_view text, NfcScratch& scratch, std::string* out,
                  std::vector<Region>* regions);

}  // namespace garden::tokenizer_internal

#endif  // GARDEN_COMMON_TEXT_NORMALIZER_H_

// UTF-8 validation and repair, one implementation for the tokenizer, the
// corpus reader, the service and the plots.
#ifndef GARDEN_COMMON_BASE_UTF8_H_
#define GARDEN_COMMON_BASE_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace garden {

// U+FFFD, what a decoder writes for bytes that are not UTF-8.
inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

// Length of the valid UTF-8 sequence at s[i] (i < n), or 0 with *bad set to
// the length of the maximal subpart of a valid sequence there (at least 1),
// which is what one replacement stands for (Unicode 15, section 3.9, "U+FFFD
// Substitution of Maximal Subparts"; Rust's from_utf8_lossy does the same).
// Strict: no overlong forms, surrogates or code points past U+10FFFF.
size_t Utf8SequenceLength(const unsigned char* s, size_t n, size_t i,
                          size_t* bad);

// Whether `s` is valid UTF-8; *ascii (if given) tells whether it is all ASCII.
// Eight ASCII bytes at a time.
bool IsValidUtf8(std::string_view s, bool* ascii = nullptr);

// One replaced stretch: out[out_begin, out_end) stands for in[in_begin, in_end).
struct Utf8Repair {
  size_t out_begin, out_end;
  size_t in_begin, in_end;
};

// `s` with each maximal invalid subpart replaced by `replacement`; each
// replacement is recorded in *repairs when given.
std::string ReplaceInvalidUtf8(
    std::string_view s, std::string_view replacement = kReplacementCharacter,
    std::vector<Utf8Repair>* repairs = nullptr);

// `s` made safe to quote in a status message, which must be valid UTF-8
// (clients decode it): printable ASCII and valid multi-byte sequences are
// kept, control bytes and bytes that are not UTF-8 become C escapes (\n,
// \x01, \xff, ...). ASCII text without control bytes comes back unchanged.
std::string EscapeForMessage(std::string_view s);

// EscapeForMessage(s) in double quotes: how messages name untrusted names.
std::string QuoteForMessage(std::string_view s);

// Whether `s` ends with U+FFFD (a decoder's mark of an incomplete character).
bool EndsWithReplacement(std::string_view s);

}  // namespace garden

#endif  // GARDEN_COMMON_BASE_UTF8_H_

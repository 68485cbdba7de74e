// Code points of valid UTF-8 text, and the two Unicode properties the
// tokenizer's stages test: White_Space (the GPT-2 pattern's \s, an added
// token's lstrip and rstrip) and "letter or number" (single_word). Internal
// to garden_text; inline because the encoders call them per character.
#ifndef GARDEN_COMMON_TEXT_UNICODE_H_
#define GARDEN_COMMON_TEXT_UNICODE_H_

#include <utf8proc.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace garden::tokenizer_internal {

// Unicode White_Space, which is what Oniguruma's \s (and Rust's
// char::is_whitespace) mean, as a PCRE2 character class body. PCRE2's own \s
// under UCP also takes U+180E.
inline constexpr char kWhiteSpaceClass[] =
    "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
    "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

// The same set as kWhiteSpaceClass.
inline bool IsWhiteSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// A letter or a number (general categories L* and N*).
inline bool IsWordChar(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

inline void AppendUtf8(char32_t c, std::string* out) {
  unsigned char buf[4];
  const auto len = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  out->append(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
}

// Decodes the (valid) character starting at s[i]; *len gets its length.
inline char32_t DecodeAt(std::string_view s, size_t i, size_t* len) {
  utf8proc_int32_t c = 0;
  auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(&s[i]),
                            static_cast<utf8proc_ssize_t>(s.size() - i), &c);
  if (n <= 0) {
    *len = 1;
    return 0xFFFD;
  }
  *len = static_cast<size_t>(n);
  return static_cast<char32_t>(c);
}

// Start of the (valid) character that ends at s[i - 1].
inline size_t PreviousCharStart(std::string_view s, size_t i) {
  do {
    --i;
  } while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80);
  return i;
}

}  // namespace garden::tokenizer_internal

#endif  // GARDEN_COMMON_TEXT_UNICODE_H_

#include "common/base/utf8.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"

namespace garden {

size_t Utf8SequenceLength(const unsigned char* s, size_t n, size_t i,
                          size_t* bad) {
  const unsigned char b = s[i];
  if (b < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    *bad = 1;
    return 0;
  }
  size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= n) break;
    const unsigned char c = s[i + k];
    if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
  }
  if (k > need) return need + 1;
  *bad = k;
  return 0;
}

bool IsValidUtf8(std::string_view s, bool* ascii) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  bool all_ascii = true;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    all_ascii = false;
    size_t bad;
    const size_t len = Utf8SequenceLength(p, n, i, &bad);
    if (len == 0) {
      if (ascii != nullptr) *ascii = false;
      return false;
    }
    i += len;
  }
  if (ascii != nullptr) *ascii = all_ascii;
  return true;
}

std::string ReplaceInvalidUtf8(std::string_view s, std::string_view replacement,
                               std::vector<Utf8Repair>* repairs) {
  std::string out;
  out.reserve(s.size() + 16);
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    size_t bad = 0;
    const size_t len = Utf8SequenceLength(p, s.size(), i, &bad);
    if (len > 0) {
      out.append(s.data() + i, len);
      i += len;
      continue;
    }
    if (repairs != nullptr) {
      repairs->push_back(
          {out.size(), out.size() + replacement.size(), i, i + bad});
    }
    out.append(replacement);
    i += bad;
  }
  return out;
}

std::string EscapeForMessage(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    size_t bad = 0;
    const size_t len = c < 0x80 ? 0 : Utf8SequenceLength(p, s.size(), i, &bad);
    if (len > 0) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out.append(absl::CHexEscape(ToAbsl(s.substr(i, 1))));
      ++i;
    }
  }
  return out;
}

bool EndsWithReplacement(std::string_view s) {
  return s.size() >= kReplacementCharacter.size() &&
         s.substr(s.size() - kReplacementCharacter.size()) ==
             kReplacementCharacter;
}

std::string QuoteForMessage(std::string_view s) {
  return absl::StrCat("\"", EscapeForMessage(s), "\"");
}

}  // namespace garden

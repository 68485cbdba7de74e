// GPT-2's byte alphabet written out independently of common/text, so that
// tests of the tokenizer and the BPE trainer check them against a second
// implementation: printable bytes stand for themselves, the others for
// U+0100 onwards, in byte order.
#ifndef GARDEN_TESTS_TESTING_BYTE_ALPHABET_H_
#define GARDEN_TESTS_TESTING_BYTE_ALPHABET_H_

#include <string>
#include <string_view>
#include <vector>

namespace garden::testing {

// The 256 byte symbols as tokenizer.json spells them (UTF-8), by byte.
inline const std::vector<std::string>& ByteSymbols() {
  static const auto* table = [] {
    auto* out = new std::vector<std::string>();
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int c = printable ? b : next++;
      std::string s;
      if (c < 0x80) {
        s += static_cast<char>(c);
      } else {
        s += static_cast<char>(0xC0 | (c >> 6));
        s += static_cast<char>(0x80 | (c & 0x3F));
      }
      out->push_back(s);
    }
    return out;
  }();
  return *table;
}

// Raw bytes spelled in the byte alphabet.
inline std::string ByteLevel(std::string_view raw) {
  std::string out;
  for (unsigned char b : raw) out += ByteSymbols()[b];
  return out;
}

}  // namespace garden::testing

#endif  // GARDEN_TESTS_TESTING_BYTE_ALPHABET_H_

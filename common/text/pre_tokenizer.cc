#include "common/text/pre_tokenizer.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/text/unicode.h"

namespace garden::tokenizer_internal {

ByteAlphabet::ByteAlphabet() {
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable =
        (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    char_of[b] = printable ? static_cast<char32_t>(b) : next++;
    byte_of[char_of[b]] = static_cast<uint8_t>(b);
  }
}

const ByteAlphabet& ByteAlphabet::Get() {
  static const ByteAlphabet* alphabet = new ByteAlphabet();
  return *alphabet;
}

std::string ByteLevelString(std::string_view bytes) {
  const ByteAlphabet& alphabet = ByteAlphabet::Get();
  std::string out;
  for (unsigned char b : bytes) AppendUtf8(alphabet.char_of[b], &out);
  return out;
}

absl::StatusOr<const SplitPattern*> SplitPattern::Compile() {
  const std::string ws = kWhiteSpaceClass;
  const std::string pattern =
      absl::StrCat("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^", ws,
                   "\\p{L}\\p{N}]+|[", ws, "]+(?![^", ws, "])|[", ws, "]+");
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* compiled = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
      PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &code, &offset, nullptr);
  if (compiled == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(code, message, sizeof message);
    return absl::InternalError(
        absl::StrCat("cannot compile the split pattern: ",
                     reinterpret_cast<const char*>(message)));
  }
  const bool jit = pcre2_jit_compile(compiled, PCRE2_JIT_COMPLETE) == 0;
  return new SplitPattern(compiled, jit);
}

absl::StatusOr<const SplitPattern*> SplitPattern::Get() {
  static const auto* pattern =
      new absl::StatusOr<const SplitPattern*>(Compile());
  return *pattern;
}

SplitPattern::~SplitPattern() { pcre2_code_free(code_); }

SplitPattern::MatchData SplitPattern::NewMatchData() const {
  return MatchData(pcre2_match_data_create_from_pattern(code_, nullptr));
}

}  // namespace garden::tokenizer_internal

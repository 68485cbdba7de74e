// Step 4 of the tokenizer's pipeline (common/text/tokenizer.h), the ByteLevel
// pre-tokenizer: the GPT-2 split pattern, run by PCRE2 (JIT-compiled where
// the platform allows), and GPT-2's byte alphabet, in which tokenizer.json
// spells raw bytes. Internal to garden_text.
#ifndef GARDEN_COMMON_TEXT_PRE_TOKENIZER_H_
#define GARDEN_COMMON_TEXT_PRE_TOKENIZER_H_

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace garden::tokenizer_internal {

// GPT-2's byte <-> character table: printable bytes stand for themselves, the
// others (controls, space, DEL, NBSP, soft hyphen) for U+0100 onwards.
struct ByteAlphabet {
  std::array<char32_t, 256> char_of{};
  absl::flat_hash_map<char32_t, uint8_t> byte_of;

  // The one table.
  static const ByteAlphabet& Get();

 private:
  ByteAlphabet();
};

// Raw bytes spelled in the alphabet (" the" is "Ġthe").
std::string ByteLevelString(std::string_view bytes);

// The compiled split pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|␣?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with \s spelled out as White_Space. Immutable once compiled, so one is
// shared by every tokenizer and thread; each thread matches with its own
// MatchData.
class SplitPattern {
 public:
  // The process's pattern, compiled on first use. INTERNAL ("cannot compile
  // the split pattern: ...") if PCRE2 rejects it, which it never should.
  static absl::StatusOr<const SplitPattern*> Get();

  struct MatchDataFree {
    void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
  };
  using MatchData = std::unique_ptr<pcre2_match_data, MatchDataFree>;
  MatchData NewMatchData() const;

  // Calls emit(begin, end) for each split of the valid UTF-8 `piece`, in
  // order; the splits cover `piece`. A template, so that the per-word work
  // in `emit` inlines into the loop.
  template <typename Emit>
  void ForEach(pcre2_match_data* match, std::string_view piece,
               Emit&& emit) const;

  ~SplitPattern();

 private:
  SplitPattern(pcre2_code* code, bool jit) : code_(code), jit_(jit) {}
  static absl::StatusOr<const SplitPattern*> Compile();

  pcre2_code* code_;
  bool jit_;
};

template <typename Emit>
void SplitPattern::ForEach(pcre2_match_data* match, std::string_view piece,
                           Emit&& emit) const {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
  size_t at = 0;
  while (at < piece.size()) {
    int rc = -1;
    if (jit_) {
      rc = pcre2_jit_match(code_, subject, piece.size(), at, 0, match, nullptr);
    }
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
      // No JIT, or its stack ran out: the interpreter keeps its
      // backtracking state on the heap.
      rc = pcre2_match(code_, subject, piece.size(), at, PCRE2_NO_UTF_CHECK,
                       match, nullptr);
    }
    if (rc < 0) {  // every character matches some branch; never happens
      emit(at, piece.size());
      break;
    }
    const size_t mb = ovector[0], me = ovector[1];
    if (mb > at) emit(at, mb);
    if (me <= mb) {  // cannot match empty; guard against looping anyway
      emit(mb, piece.size());
      break;
    }
    emit(mb, me);
    at = me;
  }
}

}  // namespace garden::tokenizer_internal

#endif  // GARDEN_COMMON_TEXT_PRE_TOKENIZER_H_

// The tokenizer's id table and its ByteLevel decoder (common/text/tokenizer.h):
// per id the piece as tokenizer.json spells it and the bytes it decodes to.
// Internal to garden_text.
#ifndef GARDEN_COMMON_TEXT_DECODER_H_
#define GARDEN_COMMON_TEXT_DECODER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"

namespace garden::tokenizer_internal {

class ByteLevelDecoder {
 public:
  // Index: id. `known` is false for ids in gaps of the file's ids, whose
  // pieces are empty; `special` marks added tokens flagged special.
  ByteLevelDecoder(std::vector<std::string> pieces, std::vector<bool> known,
                   std::vector<bool> special);

  // One more than the largest id.
  int32_t size() const { return static_cast<int32_t>(pieces_.size()); }
  bool IsKnown(int32_t id) const {
    return id >= 0 && id < size() && known_[id];
  }
  bool IsSpecial(int32_t id) const {
    return id >= 0 && id < size() && special_[id];
  }
  // The bytes a known id decodes to.
  const std::string& TokenBytes(int32_t id) const { return bytes_[id]; }

  // The tokens' bytes, concatenated, as valid UTF-8 (U+FFFD for each
  // maximal invalid subsequence); unknown ids as Placeholder(id); special
  // ones dropped with `skip_special_tokens`.
  std::string Decode(absl::Span<const int32_t> ids,
                     bool skip_special_tokens) const;
  // The piece, or the placeholder for an unknown id.
  std::string IdToPiece(int32_t id) const;

  // "<|unk:50300|>".
  static std::string Placeholder(int32_t id);

 private:
  std::vector<std::string> pieces_;
  std::vector<std::string> bytes_;
  std::vector<bool> known_;
  std::vector<bool> special_;
};

}  // namespace garden::tokenizer_internal

#endif  // GARDEN_COMMON_TEXT_DECODER_H_

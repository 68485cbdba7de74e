#include "common/text/decoder.h"

#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/utf8.h"
#include "common/text/pre_tokenizer.h"
#include "common/text/unicode.h"

namespace garden::tokenizer_internal {
namespace {

// What the ByteLevel decoder makes of one token: its characters' bytes if
// all belong to the alphabet, else the token's own UTF-8 (so "  " stays "  ").
std::string PieceBytes(std::string_view piece) {
  const ByteAlphabet& alphabet = ByteAlphabet::Get();
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    size_t len;
    const char32_t c = DecodeAt(piece, i, &len);
    auto it = alphabet.byte_of.find(c);
    if (it == alphabet.byte_of.end()) return std::string(piece);
    out.push_back(static_cast<char>(it->second));
    i += len;
  }
  return out;
}

}  // namespace

ByteLevelDecoder::ByteLevelDecoder(std::vector<std::string> pieces,
                                   std::vector<bool> known,
                                   std::vector<bool> special)
    : pieces_(std::move(pieces)),
      known_(std::move(known)),
      special_(std::move(special)) {
  bytes_.resize(pieces_.size());
  for (size_t id = 0; id < pieces_.size(); ++id) {
    if (known_[id]) bytes_[id] = PieceBytes(pieces_[id]);
  }
}

std::string ByteLevelDecoder::Placeholder(int32_t id) {
  return absl::StrCat("<|unk:", id, "|>");
}

std::string ByteLevelDecoder::Decode(absl::Span<const int32_t> ids,
                                     bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (!IsKnown(id)) {
      bytes += Placeholder(id);
    } else if (!(skip_special_tokens && special_[id])) {
      bytes += bytes_[id];
    }
  }
  bool ascii;
  if (IsValidUtf8(bytes, &ascii)) return bytes;
  return ReplaceInvalidUtf8(bytes);
}

std::string ByteLevelDecoder::IdToPiece(int32_t id) const {
  if (!IsKnown(id)) return Placeholder(id);
  return pieces_[id];
}

}  // namespace garden::tokenizer_internal

// The byte-level BPE tokenizer of GPT-NeoX / Pythia, read from a Hugging Face
// `tokenizer.json`, giving the same ids as the Hugging Face `tokenizers`
// library for every valid UTF-8 input.
//
// Encoding runs the library's pipeline:
//   1. Added tokens whose `normalized` flag is false (Pythia: <|endoftext|>,
//      <|padding|>, ...) are cut out of the raw text.
//   2. The pieces between them are normalized (NFC, if the file asks for it).
//   3. Added tokens with `normalized` true (Pythia: the runs of 2 to 24
//      spaces) are cut out of the normalized pieces.
//      Both passes match leftmost-longest, as the library's Aho-Corasick
//      automaton does, and honour each token's `single_word`, `lstrip` and
//      `rstrip` flags.
//   4. The remaining text is split with the GPT-2 pattern (one pattern, cut
//      here after a "|"):
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
//        ␣?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+         (␣ is a space)
//      (a space is prepended first when `add_prefix_space` is set), where \s
//      is the Unicode White_Space property, as in Oniguruma.
//   5. Each split is mapped to bytes and merged by BPE, lowest merge rank
//      first and leftmost first among equal ranks.
// Decoding concatenates the tokens' bytes (the ByteLevel decoder) and
// replaces invalid UTF-8 with U+FFFD, one per maximal invalid subsequence,
// like Rust's String::from_utf8_lossy.
//
// Only files of that shape are accepted: model BPE (no dropout, no subword
// prefix or suffix, no byte fallback), normalizer NFC or none, pre-tokenizer
// ByteLevel, decoder ByteLevel, post-processor ByteLevel or none (Garden adds
// no BOS/EOS), and the symbol of every byte that can occur in UTF-8 in the
// vocabulary. The file's truncation and padding settings are ignored.
//
// Each stage has its own file in common/text/: added_tokens.h (steps 1 and
// 3), normalizer.h (2), pre_tokenizer.h (4), bpe.h (5) and decoder.h, and
// tokenizer_json.h reads the file; Tokenizer builds the stages from what it
// read and runs them in order.
#ifndef GARDEN_COMMON_TEXT_TOKENIZER_H_
#define GARDEN_COMMON_TEXT_TOKENIZER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace garden {

namespace tokenizer_internal {
class AddedTokenSplitter;
class BpeModel;
class ByteLevelDecoder;
class SplitPattern;
}  // namespace tokenizer_internal

// One token of an encoding and the bytes of the input text it came from.
struct TokenSpan {
  int32_t id = 0;
  // [begin, end) in bytes of the text given to EncodeWithOffsets. Where NFC
  // changed the text, or invalid UTF-8 was replaced, every token from the
  // changed stretch (a grapheme cluster, usually) gets the whole stretch.
  // Tokens holding part of a character's bytes get the whole character, so
  // consecutive tokens can overlap. A prepended prefix space is empty.
  size_t begin = 0;
  size_t end = 0;

  bool operator==(const TokenSpan&) const = default;
};

class Tokenizer {
 public:
  // Reads and validates a tokenizer.json. NOT_FOUND if the file does not
  // exist, PERMISSION_DENIED if it cannot be read, DATA_LOSS (the message
  // starting with "<path>: ") if it is not valid JSON, is malformed, or asks
  // for something this tokenizer does not implement.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(
      const std::string& path);
  // The same from the file's contents; `name` stands for the path in errors.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(
      std::string_view json, std::string_view name);

  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  ~Tokenizer();

  // Text to ids. Never fails: invalid UTF-8 is first replaced with U+FFFD,
  // one per maximal invalid subsequence (the Unicode-recommended practice,
  // the same as Decode's), so the ids are those the Hugging Face library
  // gives for that repaired text. Thread-safe: any number of threads may
  // encode at once (they share a word cache behind sharded locks).
  std::vector<int32_t> Encode(std::string_view text) const;
  // The same ids, each with the bytes of `text` it came from.
  std::vector<TokenSpan> EncodeWithOffsets(std::string_view text) const;

  // Ids to text (valid UTF-8). Ids the tokenizer lacks, such as the padding
  // rows of Pythia's embedding (ids from vocab_size() to 50303), which early
  // checkpoints do emit, and negative ids decode to a visible placeholder,
  // "<|unk:50300|>". With `skip_special_tokens`, added tokens marked special
  // decode to nothing.
  std::string Decode(absl::Span<const int32_t> ids,
                     bool skip_special_tokens = false) const;

  // The token as tokenizer.json spells it ("Ġthe" for " the"; added tokens as
  // written), or the placeholder for an unknown id.
  std::string IdToPiece(int32_t id) const;
  // One more than the largest id: 50281 for Pythia's tokenizer.json, whose
  // added tokens reach 50280. Ids below it that the file does not define
  // (none in Pythia's) are unknown too.
  int32_t vocab_size() const;
  // Whether `id` is an added token marked special.
  bool IsSpecial(int32_t id) const;

  // What encoding does to text before splitting it, outside added tokens:
  // invalid UTF-8 repaired, then NFC if the file asks for it.
  // Decode(Encode(x)) == Normalize(x) for text without non-normalized added
  // tokens next to combining characters.
  std::string Normalize(std::string_view text) const;

  // Raw bytes as tokenizer.json spells them in GPT-2's byte alphabet:
  // printable bytes as themselves, the others from U+0100 on, in byte order
  // (" the" is "Ġthe").
  static std::string ByteLevelSpelling(std::string_view bytes);

  // Step 4 alone, as for a file without NFC or a prefix space: splits `text`
  // (invalid UTF-8 repaired first) with the GPT-2 pattern and calls `emit`
  // with each piece in order; the pieces concatenate to the (repaired) text,
  // and are views that live until PreTokenize returns.
  // Vocabulary training (common/text/bpe_trainer.h) counts these words.
  // Thread-safe.
  static void PreTokenize(std::string_view text,
                          absl::FunctionRef<void(std::string_view)> emit);

  // BPE of one pre-tokenized word (raw bytes), bypassing the cache; `heap`
  // forces the O(n log n) merge loop used for long words instead of the
  // quadratic one used for short ones. They must agree.
  std::vector<int32_t> BpeForTesting(std::string_view word, bool heap) const;

 private:
  struct Scratch;

  Tokenizer();

  void EncodeImpl(std::string_view text, std::vector<int32_t>* ids,
                  std::vector<TokenSpan>* spans) const;
  // Steps 3 to 5 on one normalized piece of text; `ranges`, if not null,
  // receives each token's byte range in `text`.
  void EncodeNormalized(std::string_view text, Scratch& scratch,
                        std::vector<int32_t>* ids,
                        std::vector<std::pair<size_t, size_t>>* ranges) const;

  // Steps 1 and 3: the added tokens with `normalized` false, and true.
  std::unique_ptr<tokenizer_internal::AddedTokenSplitter> raw_added_;
  std::unique_ptr<tokenizer_internal::AddedTokenSplitter> normalized_added_;
  bool nfc_ = false;  // step 2
  // Step 4; the pattern is the process's (SplitPattern::Get), never freed.
  bool add_prefix_space_ = false;
  bool use_regex_ = true;
  const tokenizer_internal::SplitPattern* split_ = nullptr;
  std::unique_ptr<tokenizer_internal::BpeModel> bpe_;  // step 5
  // The ids' pieces and bytes; decoding.
  std::unique_ptr<tokenizer_internal::ByteLevelDecoder> decoder_;
};

}  // namespace garden

#endif  // GARDEN_COMMON_TEXT_TOKENIZER_H_

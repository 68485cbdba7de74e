// Training a byte-level BPE vocabulary like GPT-2's and Pythia's, written as a
// Hugging Face tokenizer.json that garden::Tokenizer (common/text/tokenizer.h)
// loads and encodes with exactly as it was trained.
//
// The training:
//   1. Each document is cut at the special tokens (leftmost, longest first,
//      as Tokenizer::Encode cuts them), and the rest is split into words by
//      Tokenizer::PreTokenize (the GPT-2 pattern, no prefix space, no
//      normalization; invalid UTF-8 repaired to U+FFFD). Words are counted.
//   2. Every word starts as its bytes. Ids: the special tokens 0, 1, ... in
//      the order given, then the 256 bytes in byte order, then the merged
//      tokens in the order they are learned.
//   3. Repeatedly, the most frequent adjacent pair of tokens (summed over
//      words, weighted by word count) is merged everywhere, left to right
//      within a word. Ties go to the pair with the lowest left id, then the
//      lowest right id: older tokens before newer ones, bytes in byte order.
//      A merge whose result spells a token already in the vocabulary would
//      reuse its id, as in the Hugging Face trainer (we have not seen it
//      happen); one spelling a special token is never made.
//   4. Training stops when the vocabulary has `vocab_size` ids, or when no
//      pair is seen `min_frequency` times, whichever comes first (so a small
//      corpus can give fewer ids, still numbered 0 to size - 1).
// Pair counts are kept up to date across merges, with an index from each
// pair to the words holding it and a max-heap of pairs with lazily dropped
// stale entries, so one merge costs time in proportion to the words it
// touches: 0.3 s for 4096 ids on the fortunes corpus (2.5 MB of documents).
#ifndef GARDEN_COMMON_TEXT_BPE_TRAINER_H_
#define GARDEN_COMMON_TEXT_BPE_TRAINER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace garden {

struct BpeTrainerOptions {
  // Total ids, the special tokens included. Below 256 + the number of
  // special tokens is INVALID_ARGUMENT.
  int vocab_size = 4096;
  // Ids 0, 1, ... as in Pythia. Written as added tokens with special true and
  // normalized false, so that they are matched in raw text and encode to
  // their ids. Empty, repeated, invalid UTF-8 or byte-symbol tokens (such as
  // "a") are INVALID_ARGUMENT.
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|padding|>"};
  // A pair seen fewer times is never merged (values below 1 mean 1).
  int min_frequency = 2;
};

// Trains on `documents` as described above and returns the text of a
// tokenizer.json: model BPE (vocab and merges, merges as "left right"
// strings), pre_tokenizer ByteLevel without prefix space, decoder ByteLevel,
// normalizer and post_processor null, the special tokens as added_tokens.
// Deterministic: the same documents and options give the same bytes.
// INVALID_ARGUMENT for an empty list of documents or bad options.
absl::StatusOr<std::string> TrainByteLevelBpe(
    const std::vector<std::string>& documents,
    const BpeTrainerOptions& options);

}  // namespace garden

#endif  // GARDEN_COMMON_TEXT_BPE_TRAINER_H_

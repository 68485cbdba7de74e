// Reading a Hugging Face tokenizer.json into the settings of the tokenizer's
// stages (common/text/tokenizer.h says which files are accepted). Internal to
// garden_text.
#ifndef GARDEN_COMMON_TEXT_TOKENIZER_JSON_H_
#define GARDEN_COMMON_TEXT_TOKENIZER_JSON_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/text/added_tokens.h"
#include "common/text/bpe.h"

namespace garden::tokenizer_internal {

using PieceIds = absl::flat_hash_map<std::string, int32_t>;

// What a tokenizer.json says, checked.
struct TokenizerSpec {
  bool ignore_merges = false;
  PieceIds vocab;  // model.vocab: piece -> id
  int32_t max_id = -1;
  std::vector<AddedToken> added;
  // Per id; an added token's content wins over the vocabulary's piece for
  // the same id, as in the library's id_to_token.
  std::vector<std::string> pieces;
  std::vector<bool> known, special;
  std::array<int32_t, 256> byte_ids{};
  BpeModel::MergeTable merges;
  bool nfc = false;
  bool add_prefix_space = true;
  bool use_regex = true;
};

// DATA_LOSS, the message starting with "<name>: ", if `json_text` is not
// valid JSON, is malformed, or asks for something the tokenizer does not
// implement. The first failing check is reported; they run section by
// section: model, added_tokens, the id table, the byte symbols, merges,
// normalizer, pre_tokenizer, decoder, post_processor.
absl::StatusOr<TokenizerSpec> ParseTokenizerJson(std::string_view json_text,
                                                 std::string_view name);

}  // namespace garden::tokenizer_internal

#endif  // GARDEN_COMMON_TEXT_TOKENIZER_JSON_H_

// Steps 1 and 3 of the tokenizer's pipeline (common/text/tokenizer.h): cutting
// a text at its added tokens, leftmost-longest as the Hugging Face library's
// Aho-Corasick automaton matches, honouring each token's single_word, lstrip
// and rstrip flags. Internal to garden_text.
#ifndef GARDEN_COMMON_TEXT_ADDED_TOKENS_H_
#define GARDEN_COMMON_TEXT_ADDED_TOKENS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"

namespace garden::tokenizer_internal {

// One entry of tokenizer.json's added_tokens.
struct AddedToken {
  int32_t id;
  std::string content;
  bool single_word, lstrip, rstrip, normalized, special;
};

// The added tokens matched in one pass: those with `normalized` false are
// matched in the raw text, the others in the normalized pieces.
class AddedTokenSplitter {
 public:
  // Matches `token` where the text holds `content` (its content, or for a
  // normalized token its normalized content). Of two tokens with the same
  // content the first added wins, as in the library.
  void Add(const AddedToken& token, std::string_view content);
  bool empty() const { return nodes_.size() == 1; }

  // Calls on_text(begin, end) for the stretches of `s` between added tokens
  // and on_token(id, begin, end) for the tokens, in order, as the library's
  // AddedVocabulary::find_matches does. One difference: after an rstrip
  // token the search resumes after the stripped spaces, where the library
  // can return overlapping pieces.
  void Split(std::string_view s,
             absl::FunctionRef<void(size_t, size_t)> on_text,
             absl::FunctionRef<void(int32_t, size_t, size_t)> on_token) const;

 private:
  // A byte trie of the contents.
  struct Node {
    int32_t token = -1;  // index into tokens_
    std::vector<std::pair<unsigned char, int32_t>> next;
  };
  // The leftmost match at or after `from`, the longest among those starting
  // there: {begin, end, token}, token -1 if none.
  std::tuple<size_t, size_t, int32_t> Find(std::string_view s,
                                           size_t from) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_{Node()};
  std::array<bool, 256> first_{};  // bytes a content starts with
};

}  // namespace garden::tokenizer_internal

#endif  // GARDEN_COMMON_TEXT_ADDED_TOKENS_H_

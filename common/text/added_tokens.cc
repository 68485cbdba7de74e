#include "common/text/added_tokens.h"

#include <algorithm>

#include "common/text/unicode.h"

namespace garden::tokenizer_internal {

void AddedTokenSplitter::Add(const AddedToken& token,
                             std::string_view content) {
  const auto index = static_cast<int32_t>(tokens_.size());
  tokens_.push_back(token);
  if (content.empty()) return;
  first_[static_cast<unsigned char>(content[0])] = true;
  int32_t at = 0;
  for (unsigned char c : content) {
    int32_t child = -1;
    for (auto& [byte, node] : nodes_[at].next) {
      if (byte == c) child = node;
    }
    if (child < 0) {
      child = static_cast<int32_t>(nodes_.size());
      nodes_[at].next.push_back({c, child});
      nodes_.emplace_back();
    }
    at = child;
  }
  if (nodes_[at].token < 0) nodes_[at].token = index;
}

std::tuple<size_t, size_t, int32_t> AddedTokenSplitter::Find(
    std::string_view s, size_t from) const {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = from; i < s.size(); ++i) {
    if (!first_[p[i]]) continue;
    int32_t at = 0, best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < s.size(); ++j) {
      int32_t child = -1;
      for (const auto& [byte, node] : nodes_[at].next) {
        if (byte == p[j]) {
          child = node;
          break;
        }
      }
      if (child < 0) break;
      at = child;
      if (nodes_[at].token >= 0) {
        best = nodes_[at].token;
        best_end = j + 1;
      }
    }
    if (best >= 0) return {i, best_end, best};
  }
  return {s.size(), s.size(), -1};
}

void AddedTokenSplitter::Split(
    std::string_view s, absl::FunctionRef<void(size_t, size_t)> on_text,
    absl::FunctionRef<void(int32_t, size_t, size_t)> on_token) const {
  size_t done = 0, from = 0;
  while (from < s.size()) {
    auto [begin, end, index] = Find(s, from);
    if (index < 0) break;
    from = end;
    const AddedToken& token = tokens_[index];
    if (token.single_word) {
      size_t len;
      const bool space_before =
          begin == 0 ||
          !IsWordChar(DecodeAt(s, PreviousCharStart(s, begin), &len));
      const bool space_after =
          end == s.size() || !IsWordChar(DecodeAt(s, end, &len));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) {
      size_t b = begin, len;
      while (b > 0) {
        const size_t prev = PreviousCharStart(s, b);
        if (!IsWhiteSpace(DecodeAt(s, prev, &len))) break;
        b = prev;
      }
      begin = std::max(b, done);
    }
    if (token.rstrip) {
      size_t len;
      while (end < s.size() && IsWhiteSpace(DecodeAt(s, end, &len))) end += len;
      from = end;
    }
    if (done < begin) on_text(done, begin);
    on_token(token.id, begin, end);
    done = end;
  }
  if (done < s.size()) on_text(done, s.size());
}

}  // namespace garden::tokenizer_internal

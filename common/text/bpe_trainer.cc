#include "common/text/bpe_trainer.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <queue>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "common/text/tokenizer.h"
#include "nlohmann/json.hpp"

namespace garden {
namespace {

using Json = nlohmann::ordered_json;  // keeps the vocabulary in id order

// The 256 byte symbols, as tokenizer.json spells them.
const std::array<std::string, 256>& ByteSymbols() {
  static const auto* symbols = [] {
    auto* out = new std::array<std::string, 256>();
    for (int b = 0; b < 256; ++b) {
      (*out)[b] =
          Tokenizer::ByteLevelSpelling(std::string(1, static_cast<char>(b)));
    }
    return out;
  }();
  return *symbols;
}

// Calls piece(text) for each stretch of `text` between special tokens,
// matched leftmost first and longest among those starting at one place.
template <typename Piece>
void ForEachOutsideSpecials(std::string_view text,
                            const std::vector<std::string>& specials,
                            std::vector<size_t>& next, Piece&& piece) {
  // next[k]: where specials[k] next occurs at or after `done` (npos: never).
  next.resize(specials.size());
  for (size_t k = 0; k < specials.size(); ++k) next[k] = text.find(specials[k]);
  size_t done = 0;
  while (true) {
    size_t best = std::string_view::npos, best_len = 0;
    for (size_t k = 0; k < specials.size(); ++k) {
      if (next[k] != std::string_view::npos && next[k] < done) {
        next[k] = text.find(specials[k], done);
      }
      if (next[k] < best ||
          (next[k] == best && best != std::string_view::npos &&
           specials[k].size() > best_len)) {
        best = next[k];
        best_len = specials[k].size();
      }
    }
    if (best == std::string_view::npos) break;
    if (best > done) piece(text.substr(done, best - done));
    done = best + best_len;
  }
  if (done < text.size()) piece(text.substr(done));
}

using PairKey = uint64_t;

PairKey Key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
         static_cast<uint32_t>(right);
}

struct Candidate {
  int64_t count;
  int32_t left, right;
};

// Heap order: the top is the most frequent pair, then the lowest left id,
// then the lowest right id.
struct LowerPriority {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.count != b.count) return a.count < b.count;
    if (a.left != b.left) return a.left > b.left;
    return a.right > b.right;
  }
};

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

// The merge loop's state: words as token ids, pair counts, and the index
// from pairs to the words that may hold them (entries go stale as words
// change; a word no longer holding the pair is merely scanned for nothing).
class Merger {
 public:
  Merger(std::vector<Word> words, int min_frequency)
      : words_(std::move(words)),
        min_frequency_(min_frequency),
        stamp_(words_.size(), 0) {
    for (uint32_t w = 0; w < words_.size(); ++w) {
      const auto& s = words_[w].symbols;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        Add(Key(s[i], s[i + 1]), words_[w].count, w);
      }
    }
    for (const auto& [key, count] : counts_) Push(key);
  }

  // The next pair to merge, or false once none is seen min_frequency times.
  bool Next(int32_t* left, int32_t* right) {
    while (!heap_.empty()) {
      const Candidate top = heap_.top();
      heap_.pop();
      auto it = counts_.find(Key(top.left, top.right));
      if (it == counts_.end() || it->second != top.count) continue;  // stale
      if (top.count < min_frequency_) return false;
      *left = top.left;
      *right = top.right;
      return true;
    }
    return false;
  }

  // Drops the pair for good (its merge would spell a special token).
  void Block(int32_t left, int32_t right) { blocked_.insert(Key(left, right)); }

  // Replaces every (left, right) with `merged`, left to right in each word,
  // and updates the counts of the neighbouring pairs.
  void Merge(int32_t left, int32_t right, int32_t merged) {
    const PairKey key = Key(left, right);
    const std::vector<uint32_t> holders = std::move(where_[key]);
    where_.erase(key);
    counts_.erase(key);
    ++merge_number_;
    touched_.clear();
    for (uint32_t w : holders) {
      if (stamp_[w] == merge_number_) continue;  // listed twice
      stamp_[w] = merge_number_;
      std::vector<int32_t>& s = words_[w].symbols;
      deltas_.clear();
      size_t out = 0;  // s[0, out) is the merged prefix
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
          if (out > 0) {
            deltas_.push_back({Key(s[out - 1], left), -1});
            deltas_.push_back({Key(s[out - 1], merged), +1});
          }
          if (i + 2 < s.size()) {
            deltas_.push_back({Key(right, s[i + 2]), -1});
            deltas_.push_back({Key(merged, s[i + 2]), +1});
          }
          s[out++] = merged;
          i += 2;
        } else {
          s[out++] = s[i++];
        }
      }
      s.resize(out);
      for (const auto& [pair, delta] : deltas_) {
        if (pair == key) continue;  // "a a a": the merged pair itself
        if (delta > 0) {
          Add(pair, words_[w].count, w);
        } else {
          counts_[pair] -= words_[w].count;
        }
        touched_.push_back(pair);
      }
    }
    std::sort(touched_.begin(), touched_.end());
    touched_.erase(std::unique(touched_.begin(), touched_.end()),
                   touched_.end());
    for (PairKey pair : touched_) Push(pair);
  }

 private:
  void Add(PairKey pair, int64_t count, uint32_t w) {
    counts_[pair] += count;
    std::vector<uint32_t>& list = where_[pair];
    if (list.empty() || list.back() != w) list.push_back(w);
  }

  void Push(PairKey pair) {
    const int64_t count = counts_[pair];
    if (count <= 0 || blocked_.contains(pair)) return;
    heap_.push({count, static_cast<int32_t>(pair >> 32),
                static_cast<int32_t>(pair & 0xFFFFFFFFu)});
  }

  std::vector<Word> words_;
  const int min_frequency_;
  absl::flat_hash_map<PairKey, int64_t> counts_;
  absl::flat_hash_map<PairKey, std::vector<uint32_t>> where_;
  absl::flat_hash_set<PairKey> blocked_;
  // Every pair with a positive count has an entry with that count; others
  // are stale and skipped.
  std::priority_queue<Candidate, std::vector<Candidate>, LowerPriority> heap_;
  std::vector<uint32_t> stamp_;  // merge_number_ of the last visit per word
  uint32_t merge_number_ = 0;
  std::vector<std::pair<PairKey, int64_t>> deltas_;
  std::vector<PairKey> touched_;
};

absl::Status CheckOptions(const BpeTrainerOptions& options) {
  const auto& specials = options.special_tokens;
  const int64_t minimum = 256 + static_cast<int64_t>(specials.size());
  if (options.vocab_size < minimum) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocab_size ", options.vocab_size, " is below ", minimum,
                     ": 256 bytes + ", specials.size(), " special tokens"));
  }
  const auto& symbols = ByteSymbols();
  for (size_t i = 0; i < specials.size(); ++i) {
    if (specials[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token ", i, " is empty"));
    }
    if (std::find(specials.begin(), specials.begin() + i, specials[i]) !=
        specials.begin() + i) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token \"", specials[i], "\" is repeated"));
    }
    try {
      (void)Json(specials[i]).dump();
    } catch (const Json::exception&) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token ", i, " is not valid UTF-8"));
    }
    if (std::find(symbols.begin(), symbols.end(), specials[i]) !=
        symbols.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token \"", specials[i],
                       "\" is the byte-level symbol of a byte"));
    }
  }
  return absl::OkStatus();
}

// Step 1: word counts, then words in byte order (hash order is not stable),
// spelt as ids (byte b is id first_byte + b).
std::vector<Word> CountWords(const std::vector<std::string>& documents,
                             const std::vector<std::string>& specials,
                             int32_t first_byte) {
  absl::flat_hash_map<std::string, int64_t> word_counts;
  std::vector<size_t> next;
  for (const std::string& doc : documents) {
    ForEachOutsideSpecials(doc, specials, next, [&](std::string_view piece) {
      Tokenizer::PreTokenize(piece, [&](std::string_view word) {
        auto it = word_counts.find(ToAbsl(word));
        if (it == word_counts.end()) {
          word_counts.emplace(std::string(word), 1);
        } else {
          ++it->second;
        }
      });
    });
  }
  std::vector<std::pair<std::string, int64_t>> sorted(word_counts.begin(),
                                                      word_counts.end());
  word_counts.clear();
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [text, count] : sorted) {
    Word w{{}, count};
    w.symbols.reserve(text.size());
    for (unsigned char b : text) w.symbols.push_back(first_byte + b);
    words.push_back(std::move(w));
  }
  return words;
}

// The vocabulary as it grows: per id its raw bytes and its spelling, and
// ids by raw bytes.
struct Vocabulary {
  std::vector<std::string> bytes_of;
  std::vector<std::string> piece_of;
  absl::flat_hash_map<std::string, int32_t> id_of;
};

// Step 2: the special tokens, then the 256 bytes.
Vocabulary InitialVocabulary(const std::vector<std::string>& specials) {
  const int32_t first_byte = static_cast<int32_t>(specials.size());
  Vocabulary v;
  v.bytes_of.resize(first_byte);
  v.piece_of.assign(specials.begin(), specials.end());
  for (int b = 0; b < 256; ++b) {
    v.bytes_of.emplace_back(1, static_cast<char>(b));
    v.piece_of.push_back(ByteSymbols()[b]);
    v.id_of.emplace(v.bytes_of.back(), first_byte + b);
  }
  return v;
}

// Step 3: merges, most frequent pair first, until the vocabulary is full or
// no pair is frequent enough; none may spell a special token.
std::vector<std::string> LearnMerges(std::vector<Word> words,
                                     const BpeTrainerOptions& options,
                                     Vocabulary& v) {
  const absl::flat_hash_set<std::string> special_set(
      options.special_tokens.begin(), options.special_tokens.end());
  Merger merger(std::move(words), std::max(options.min_frequency, 1));
  std::vector<std::string> merges;
  int32_t left, right;
  while (static_cast<int>(v.bytes_of.size()) < options.vocab_size &&
         merger.Next(&left, &right)) {
    std::string merged = v.bytes_of[left] + v.bytes_of[right];
    std::string piece = Tokenizer::ByteLevelSpelling(merged);
    if (special_set.contains(piece)) {
      merger.Block(left, right);
      continue;
    }
    auto [it, added] =
        v.id_of.try_emplace(merged, static_cast<int32_t>(v.bytes_of.size()));
    if (added) {
      v.bytes_of.push_back(std::move(merged));
      v.piece_of.push_back(std::move(piece));
    }
    merges.push_back(absl::StrCat(v.piece_of[left], " ", v.piece_of[right]));
    merger.Merge(left, right, it->second);
  }
  return merges;
}

// Step 4: the tokenizer.json, fields in the Hugging Face library's order.
std::string TokenizerJson(const std::vector<std::string>& specials,
                          const std::vector<std::string>& piece_of,
                          const std::vector<std::string>& merges) {
  Json added_tokens = Json::array();
  for (size_t i = 0; i < specials.size(); ++i) {
    added_tokens.push_back({{"id", i},
                            {"content", specials[i]},
                            {"single_word", false},
                            {"lstrip", false},
                            {"rstrip", false},
                            {"normalized", false},
                            {"special", true}});
  }
  Json vocab = Json::object();
  for (size_t id = 0; id < piece_of.size(); ++id) vocab[piece_of[id]] = id;
  Json byte_level = {{"type", "ByteLevel"},
                     {"add_prefix_space", false},
                     {"trim_offsets", true},
                     {"use_regex", true}};
  Json json = {{"version", "1.0"},
               {"truncation", nullptr},
               {"padding", nullptr},
               {"added_tokens", std::move(added_tokens)},
               {"normalizer", nullptr},
               {"pre_tokenizer", byte_level},
               {"post_processor", nullptr},
               {"decoder", byte_level},
               {"model",
                {{"type", "BPE"},
                 {"dropout", nullptr},
                 {"unk_token", nullptr},
                 {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr},
                 {"fuse_unk", false},
                 {"byte_fallback", false},
                 {"vocab", std::move(vocab)},
                 {"merges", merges}}}};
  // Every string is valid UTF-8 (CheckOptions saw to the special tokens), so
  // this cannot throw.
  return json.dump(2) + "\n";
}

}  // namespace

absl::StatusOr<std::string> TrainByteLevelBpe(
    const std::vector<std::string>& documents,
    const BpeTrainerOptions& options) {
  if (documents.empty()) {
    return absl::InvalidArgumentError("no documents to train on");
  }
  RETURN_IF_ERROR(CheckOptions(options));
  const auto& specials = options.special_tokens;
  std::vector<Word> words =
      CountWords(documents, specials, static_cast<int32_t>(specials.size()));
  Vocabulary vocabulary = InitialVocabulary(specials);
  const std::vector<std::string> merges =
      LearnMerges(std::move(words), options, vocabulary);
  return TokenizerJson(specials, vocabulary.piece_of, merges);
}

}  // namespace garden

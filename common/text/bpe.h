// Step 5 of the tokenizer's pipeline (common/text/tokenizer.h): byte-level
// BPE of one pre-tokenized word, lowest merge rank first and leftmost first
// among equal ranks, behind a word cache. Internal to garden_text.
#ifndef GARDEN_COMMON_TEXT_BPE_H_
#define GARDEN_COMMON_TEXT_BPE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace garden::tokenizer_internal {

class BpeModel {
 public:
  struct Merge {
    int32_t rank;
    int32_t id;  // of the merged token
  };
  // (left id << 32 | right id) -> the pair's merge.
  using MergeTable = absl::flat_hash_map<uint64_t, Merge>;
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
  }

  // `byte_ids`: each byte's initial symbol (-1 for bytes that never occur in
  // UTF-8). `whole_words`: empty, or, for an `ignore_merges` file, the
  // vocabulary (byte-level spelling -> id), tried before any merge.
  BpeModel(const std::array<int32_t, 256>& byte_ids, MergeTable merges,
           absl::flat_hash_map<std::string, int32_t> whole_words);
  ~BpeModel();
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of `word` (raw bytes). Thread-safe: words of up to 128
  // bytes go through a cache shared behind sharded locks.
  void Encode(std::string_view word, std::vector<int32_t>* ids) const;

  // The merge loops, bypassing the cache. MergeShort repeatedly merges the
  // leftmost pair of lowest rank, quadratic in the word's length and the
  // fastest for short words (it hands words over 64 bytes to MergeLong);
  // MergeLong is the library's algorithm, O(n log n). They must agree.
  void MergeShort(std::string_view word, std::vector<int32_t>* ids) const;
  void MergeLong(std::string_view word, std::vector<int32_t>* ids) const;

 private:
  struct Cache;

  const Merge* FindMerge(int32_t left, int32_t right) const {
    auto it = merges_.find(PairKey(left, right));
    return it == merges_.end() ? nullptr : &it->second;
  }

  std::array<int32_t, 256> byte_ids_;
  MergeTable merges_;
  absl::flat_hash_map<std::string, int32_t> whole_words_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace garden::tokenizer_internal

#endif  // GARDEN_COMMON_TEXT_BPE_H_

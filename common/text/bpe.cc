#include "common/text/bpe.h"

#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <utility>

#include "absl/hash/hash.h"
#include "common/base/absl_compat.h"
#include "common/text/pre_tokenizer.h"

namespace garden::tokenizer_internal {
namespace {

// Words longer than this (in bytes) take the heap-based merge loop; the
// quadratic one is faster below it.
constexpr size_t kShortWord = 64;
// Words up to this length go through the cache; longer ones are rare and
// would only crowd it.
constexpr size_t kMaxCachedWord = 128;
constexpr int kCacheShards = 64;
constexpr size_t kCacheEntriesPerShard = 4096;

}  // namespace

struct BpeModel::Cache {
  struct alignas(64) Shard {
    std::shared_mutex mu;
    absl::flat_hash_map<std::string, std::vector<int32_t>> words;
  };
  std::array<Shard, kCacheShards> shards;
};

BpeModel::BpeModel(const std::array<int32_t, 256>& byte_ids, MergeTable merges,
                   absl::flat_hash_map<std::string, int32_t> whole_words)
    : byte_ids_(byte_ids),
      merges_(std::move(merges)),
      whole_words_(std::move(whole_words)),
      cache_(std::make_unique<Cache>()) {}

BpeModel::~BpeModel() = default;

void BpeModel::MergeShort(std::string_view word,
                          std::vector<int32_t>* ids) const {
  constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
  const size_t n0 = word.size();
  if (n0 > kShortWord) {
    MergeLong(word, ids);
    return;
  }
  // The rank of every adjacent pair is kept in an array, so that each merge
  // costs two lookups and a scan.
  int32_t sym[kShortWord], rank[kShortWord], merged[kShortWord];
  size_t n = n0;
  for (size_t i = 0; i < n; ++i) {
    sym[i] = byte_ids_[static_cast<unsigned char>(word[i])];
  }
  auto pair = [&](size_t i) {
    const Merge* m = FindMerge(sym[i], sym[i + 1]);
    rank[i] = m ? m->rank : kNone;
    merged[i] = m ? m->id : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) pair(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i) {
      if (rank[i] < rank[best]) best = i;
    }
    if (rank[best] == kNone) break;
    sym[best] = merged[best];
    std::memmove(&sym[best + 1], &sym[best + 2],
                 (n - best - 2) * sizeof(int32_t));
    std::memmove(&rank[best + 1], &rank[best + 2],
                 (n - best - 2) * sizeof(int32_t));
    std::memmove(&merged[best + 1], &merged[best + 2],
                 (n - best - 2) * sizeof(int32_t));
    --n;
    if (best > 0) pair(best - 1);
    if (best + 1 < n) pair(best);
  }
  ids->insert(ids->end(), sym, sym + n);
}

// A heap of candidate merges ordered by (rank, position), entries
// invalidated lazily.
void BpeModel::MergeLong(std::string_view word,
                         std::vector<int32_t>* ids) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<Symbol> symbols(n);
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = {byte_ids_[static_cast<unsigned char>(word[i])], i - 1,
                  i + 1 < n ? i + 1 : -1, true};
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const Merge* m = FindMerge(symbols[pos].id, symbols[next].id)) {
      heap.push({m->rank, pos, m->id});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const Merge* m = FindMerge(left.id, right.id);
    if (m == nullptr || m->id != top.id) continue;  // stale
    left.id = top.id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    push(top.pos);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = symbols[i].next) {
    ids->push_back(symbols[i].id);
  }
}

void BpeModel::Encode(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.size() == 1) {
    ids->push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (!whole_words_.empty()) {
    auto it = whole_words_.find(ByteLevelString(word));
    if (it != whole_words_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  if (word.size() > kMaxCachedWord) {
    MergeLong(word, ids);
    return;
  }
  const absl::string_view key = ToAbsl(word);
  const size_t hash = absl::Hash<absl::string_view>()(key);
  Cache::Shard& shard = cache_->shards[(hash >> 20) % kCacheShards];
  {
    std::shared_lock lock(shard.mu);
    auto it = shard.words.find(key);
    if (it != shard.words.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = ids->size();
  MergeShort(word, ids);
  std::unique_lock lock(shard.mu, std::try_to_lock);
  // Under contention, or once full, skip caching: it only costs speed.
  if (lock.owns_lock() && shard.words.size() < kCacheEntriesPerShard) {
    shard.words.try_emplace(key, ids->begin() + start, ids->end());
  }
}

}  // namespace garden::tokenizer_internal

// Loaded models and tokenizers, shared by every request.
//
// Models are cached on their device, least recently used first out once the
// cached parameters exceed a byte budget; concurrent requests for the same
// checkpoint wait for one load. Requests keep the model they got alive even
// after it is evicted. Failed loads are not cached.
#ifndef GARDEN_SERVER_STORE_MODEL_CACHE_H_
#define GARDEN_SERVER_STORE_MODEL_CACHE_H_

#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "absl/status/statusor.h"
#include "common/model/gpt_neox.h"
#include "common/text/tokenizer.h"
#include "server/store/checkpoint_store.h"

namespace garden {

class ModelCache {
 public:
  struct Options {
    uint64_t capacity_bytes = uint64_t{8} << 30;
    std::string device = "auto";     // cpu, cuda, cuda:N, auto
    std::string dtype = "float32";   // float16/bfloat16 on CUDA only
    std::string fallback_tokenizer;  // --tokenizer FILE; "" for none
  };

  // The store must outlive the cache.
  ModelCache(const CheckpointStore& store, Options options);

  // The model of a checkpoint, loading it if needed: FAILED_PRECONDITION
  // for a config or weights that do not make a GPT-NeoX model (naming the
  // key or tensor), DATA_LOSS for corrupt files.
  absl::StatusOr<std::shared_ptr<const GptNeoxModel>> Model(
      const CheckpointLocation& where);

  // The checkpoint's tokenizer.json, else the fallback; FAILED_PRECONDITION
  // naming the files looked for when there is neither, or for a file over
  // kMaxTokenizerBytes. Files with the same bytes share one Tokenizer (a
  // suite's steps usually carry copies of one file), so callers can tell by
  // pointer that two steps tokenize alike. Concurrent requests for one file
  // share one load, and a file that failed to load fails again at once
  // until it changes (size, mtime or inode).
  static constexpr uint64_t kMaxTokenizerBytes = uint64_t{64} << 20;
  absl::StatusOr<std::shared_ptr<const Tokenizer>> TokenizerFor(
      const CheckpointLocation& where);

  uint64_t cached_bytes() const;

  // For metrics: lookups that found a model (loaded or loading), loads,
  // evictions, and what is held now; tokenizer files read and parsed.
  struct Stats {
    uint64_t hits = 0, misses = 0, evictions = 0;
    uint64_t bytes = 0, models = 0;
    uint64_t tokenizer_loads = 0;
  };
  Stats stats() const;

 private:
  using Key = std::pair<std::string, int64_t>;  // model name, step
  struct Slot {
    bool ready = false;
    absl::StatusOr<std::shared_ptr<const GptNeoxModel>> model =
        absl::UnknownError("loading");
    uint64_t bytes = 0;
  };

  absl::StatusOr<std::pair<std::shared_ptr<const GptNeoxModel>, uint64_t>> Load(
      const CheckpointLocation& where) const;
  void EvictLocked(const Key& keep);
  absl::StatusOr<std::shared_ptr<const Tokenizer>> LoadTokenizer(
      const std::string& path);

  struct FileStamp {
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  struct TokenizerSlot {
    FileStamp stamp;
    bool ready = false;
    absl::StatusOr<std::shared_ptr<const Tokenizer>> tokenizer =
        absl::UnknownError("loading");
  };

  const CheckpointStore& store_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable loaded_;
  std::map<Key, std::shared_ptr<Slot>> slots_;
  std::list<Key> recency_;  // most recent first
  uint64_t used_bytes_ = 0;
  uint64_t hits_ = 0, misses_ = 0, evictions_ = 0, tokenizer_loads_ = 0;
  std::map<std::string, std::shared_ptr<TokenizerSlot>> tokenizers_;  // by path
  // By XXH3-128 of the file's bytes and its size.
  std::map<std::tuple<uint64_t, uint64_t, size_t>,
           std::shared_ptr<const Tokenizer>>
      tokenizers_by_content_;
};

}  // namespace garden

#endif  // GARDEN_SERVER_STORE_MODEL_CACHE_H_

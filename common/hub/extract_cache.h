// Garden's own cache of byte ranges fetched from the Hub ("extracts"): a
// tensor, a safetensors header, a zip's tail. It lives beside the Hugging
// Face cache (HF_HUB_CACHE/garden/extracts/) and is content-addressed: an
// extract is keyed by the blob's etag (the sha256 of the whole file, so one
// blob shared by several commits or repositories — Pythia's duplicated
// branches — is fetched once) and its byte range.
//
// Each extract is one file, <etag>/<offset>-<size>, holding the bytes and an
// 8-byte XXH3-64 of them; it is written to a temporary name and renamed, so
// a process killed at any moment leaves nothing that reads as valid. Its
// checksum is checked on every use: an extract under 1 MiB when it is
// opened, a larger one as it is read (reads in order are hashed as they
// pass; the first read out of order checks it whole), so a sweep pays no
// second pass. A damaged extract is DATA_LOSS, deleted, and fetched again by
// the next request. The cache is capped (max_bytes) with least-recently-used
// eviction. Concurrent requests for the same range fetch it once
// (single-flight).
#ifndef GARDEN_COMMON_HUB_EXTRACT_CACHE_H_
#define GARDEN_COMMON_HUB_EXTRACT_CACHE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/formats/byte_source.h"

namespace garden {

class ExtractCache {
 public:
  struct Options {
    std::string dir;                   // created if missing
    uint64_t max_bytes = 64ull << 30;  // extracts' bytes, checksums included
  };

  // Scans `dir`, removing temporary files a killed process left (those older
  // than 10 minutes: a fresh one may be another gardend's on the same cache)
  // and files that cannot be extracts. PERMISSION_DENIED if `dir` cannot be
  // created.
  static absl::StatusOr<std::unique_ptr<ExtractCache>> Open(Options options);

  // An extract covering [offset, offset + size) of blob `etag`, verified.
  struct Hit {
    std::shared_ptr<const ByteSource> file;  // the extract's bytes (size() of them)
    uint64_t offset = 0;                     // blob offset of file's byte 0
  };
  // A cached extract covering the range, or nullopt (also when the one that
  // covered it failed its checksum: it is deleted).
  std::optional<Hit> Find(std::string_view etag, uint64_t offset,
                          uint64_t size);

  // Find, else `fetch` fills a buffer with the range's bytes and they are
  // stored (when they fit in max_bytes). One fetch for concurrent callers of
  // the same range; they all get its result.
  using Fetch = std::function<absl::Status(absl::Span<uint8_t>)>;
  absl::StatusOr<Hit> GetOrFetch(std::string_view etag, uint64_t offset,
                                 uint64_t size, const Fetch& fetch);

  uint64_t bytes() const;  // held now, checksums included

  // For metrics: ranges found cached (or in flight for another caller),
  // ranges fetched, and what is held now.
  struct Stats {
    uint64_t hits = 0, misses = 0, bytes = 0, entries = 0;
  };
  Stats stats() const;

 private:
  struct Key {
    std::string etag;
    uint64_t offset, size;
    auto operator<=>(const Key&) const = default;
  };
  struct Entry {
    std::string path;
    uint64_t file_bytes;
    std::list<Key>::iterator lru;  // in lru_, most recent first
  };
  struct Flight {
    bool done = false;
    absl::StatusOr<Hit> result = absl::UnknownError("in flight");
  };
  explicit ExtractCache(Options options) : options_(std::move(options)) {}
  void Scan();
  // The cached entry covering the range, its recency bumped.
  std::optional<std::pair<Key, std::string>> LookupLocked(
      std::string_view etag, uint64_t offset, uint64_t size);
  // An extract file as a source of its payload, checked against its
  // checksum: whole now when small, else as it is read (see the .cc).
  // DATA_LOSS for a file of the wrong size or a small one that fails.
  // The extract LookupLocked found, opened; nullopt (and dropped) if damaged.
  std::optional<Hit> OpenFound(const Key& key, const std::string& path);
  absl::StatusOr<std::shared_ptr<const ByteSource>> OpenExtract(const Key& key,
                                                         const std::string& path,
                                                         bool verified);
  std::string PathOf(const Key& key) const;
  // Fetches into the extract's file (kept when it fits), else into memory.
  absl::StatusOr<Hit> FetchAndStore(const Key& key, const Fetch& fetch);
  absl::StatusOr<Hit> FetchIntoMemory(const Key& key, const Fetch& fetch);
  void AddLocked(const Key& key, std::string path, uint64_t file_bytes);
  void DropLocked(const Key& key);

  Options options_;
  mutable std::mutex mu_;
  std::condition_variable flight_done_;
  std::map<Key, Entry> entries_;
  std::list<Key> lru_;
  uint64_t bytes_ = 0;
  uint64_t hits_ = 0, misses_ = 0;
  std::map<Key, std::shared_ptr<Flight>> flights_;
};

}  // namespace garden

#endif  // GARDEN_COMMON_HUB_EXTRACT_CACHE_H_

#include "common/hub/hub_file_source.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace garden {
namespace {

// One request for a safetensors header (the reference's readers read 100 kB
// too) or a zip's first entry.
constexpr uint64_t kHeadBytes = 100'000;
// A zip local header with its name and padding, and some room.
constexpr uint64_t kReadAheadBytes = 16 << 10;

bool Covers(const ExtractCache::Hit& hit, uint64_t offset, uint64_t size) {
  const uint64_t held = hit.file->size();
  return hit.offset <= offset && offset - hit.offset <= held &&
         size <= held - (offset - hit.offset);
}

}  // namespace

HubFileSource::HubFileSource(std::shared_ptr<HubClient> client,
                             HubFileInfo info,
                             std::shared_ptr<ExtractCache> cache)
    : client_(std::move(client)),
      info_(std::move(info)),
      cache_(std::move(cache)),
      name_(absl::StrCat(info_.repo, "@", info_.revision, "/", info_.filename)) {}

absl::StatusOr<ExtractCache::Hit> HubFileSource::Cover(
    uint64_t offset, uint64_t size, uint64_t fetch_offset,
    uint64_t fetch_size) const {
  {
    std::lock_guard lock(mu_);
    for (const auto& hit : held_) {
      if (Covers(hit, offset, size)) return hit;
    }
  }
  std::optional<ExtractCache::Hit> hit = cache_->Find(info_.etag, offset, size);
  if (!hit) {
    if (client_ == nullptr) {
      return absl::UnavailableError(absl::StrCat(
          name_, ": offline, and bytes [", offset, ", ", offset + size,
          ") of it are not in the cache"));
    }
    ASSIGN_OR_RETURN(hit, cache_->GetOrFetch(
                              info_.etag, fetch_offset, fetch_size,
                              [&](absl::Span<uint8_t> out) {
                                return client_->ReadRange(info_, fetch_offset,
                                                          out);
                              }));
  }
  std::lock_guard lock(mu_);
  held_.push_back(*hit);
  return *hit;
}

absl::Status HubFileSource::Prefetch(uint64_t offset, uint64_t size) const {
  if (size == 0 || offset > info_.size || size > info_.size - offset) {
    return absl::OkStatus();  // ReadAt reports ranges past the end
  }
  return Cover(offset, size, offset, size).status();
}

absl::Status HubFileSource::DoRead(uint64_t offset,
                                   absl::Span<uint8_t> out) const {
  uint64_t fetch_offset = offset, fetch_size = out.size();
  if (out.size() < kReadAheadBytes) {
    fetch_offset = offset < kHeadBytes ? 0 : offset;
    const uint64_t want = offset < kHeadBytes
                              ? std::max(kHeadBytes, offset + out.size())
                              : kReadAheadBytes;
    fetch_size = std::min(want, info_.size - fetch_offset);
  }
  ASSIGN_OR_RETURN(const ExtractCache::Hit hit,
                   Cover(offset, out.size(), fetch_offset, fetch_size));
  return hit.file->ReadAt(offset - hit.offset, out);
}

}  // namespace garden

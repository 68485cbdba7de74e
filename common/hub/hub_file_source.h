// One file of a Hub revision as a ByteSource: the checkpoint readers parse it
// exactly as a local file, and only the ranges they ask for cross the
// network, each once: every fetched range is kept in the extract cache.
//
// Reads are shaped for the readers: a read at offset 0 fetches the first
// 100 kB (a safetensors header, or a zip's first entry, data.pkl, in one
// request), other small reads fetch 16 KiB from where they start (a zip's
// local headers), and Prefetch — which TensorFile calls before a tensor —
// fetches the tensor's bytes in one range. Offline, only what the cache
// holds is served; the rest is UNAVAILABLE naming the file and the range.
#ifndef GARDEN_COMMON_HUB_HUB_FILE_SOURCE_H_
#define GARDEN_COMMON_HUB_HUB_FILE_SOURCE_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/formats/byte_source.h"
#include "common/hub/extract_cache.h"
#include "common/hub/hub_client.h"

namespace garden {

class HubFileSource : public ByteSource {
 public:
  // `client` null means offline.
  HubFileSource(std::shared_ptr<HubClient> client, HubFileInfo info,
                std::shared_ptr<ExtractCache> cache);

  // "<repo>@<revision>/<filename>".
  const std::string& name() const override { return name_; }
  uint64_t size() const override { return info_.size; }
  absl::Status Prefetch(uint64_t offset, uint64_t size) const override;

 protected:
  absl::Status DoRead(uint64_t offset, absl::Span<uint8_t> out) const override;

 private:
  // An extract covering the range: one this source holds, the cache's, or a
  // fresh fetch of [fetch_offset, fetch_offset + fetch_size).
  absl::StatusOr<ExtractCache::Hit> Cover(uint64_t offset, uint64_t size,
                                          uint64_t fetch_offset,
                                          uint64_t fetch_size) const;

  std::shared_ptr<HubClient> client_;
  HubFileInfo info_;
  std::shared_ptr<ExtractCache> cache_;
  std::string name_;
  mutable std::mutex mu_;
  mutable std::vector<ExtractCache::Hit> held_;  // this request's extracts
};

}  // namespace garden

#endif  // GARDEN_COMMON_HUB_HUB_FILE_SOURCE_H_

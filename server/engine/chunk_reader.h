// Streaming a tensor's bytes through one buffer per worker thread: the one
// place that sizes the sweeps' reads (histograms, MSD, audit hashes).
#ifndef GARDEN_SERVER_ENGINE_CHUNK_READER_H_
#define GARDEN_SERVER_ENGINE_CHUNK_READER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/base/cancel.h"
#include "server/store/checkpoint_store.h"

namespace garden {

// 4 MiB: few enough preads that their cost vanishes, small enough to stay in
// the core's L2 cache between the copy and the scan (bench/scan_bench).
inline constexpr size_t kChunkBytes = size_t{4} << 20;

// Feeds the tensor's bytes to `consume` in chunks of whole elements, read
// with pread into this thread's buffer (SafetensorsFile::ReadChunks). Stops
// at the first error of `consume`, which it returns, or with CANCELLED
// "<what> cancelled" once `cancel` (may be null) is set between chunks.
absl::Status ReadTensorChunks(
    const TensorHandle& tensor, const CancelFlag* cancel, std::string_view what,
    const std::function<absl::Status(absl::Span<const uint8_t>)>& consume);

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_CHUNK_READER_H_

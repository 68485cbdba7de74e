#include "server/engine/chunk_reader.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"

namespace garden {

absl::Status ReadTensorChunks(
    const TensorHandle& tensor, const CancelFlag* cancel, std::string_view what,
    const std::function<absl::Status(absl::Span<const uint8_t>)>& consume) {
  thread_local std::vector<uint8_t> buffer(kChunkBytes);
  return tensor.file->ReadChunks(
      *tensor.info, absl::MakeSpan(buffer),
      [&](absl::Span<const uint8_t> chunk) -> absl::Status {
        if (IsCancelled(cancel)) {
          return absl::CancelledError(absl::StrCat(ToAbsl(what), " cancelled"));
        }
        return consume(chunk);
      });
}

}  // namespace garden

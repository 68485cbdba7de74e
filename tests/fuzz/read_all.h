// What every fuzz target does with a file its reader accepted: read each
// tensor through a small buffer, as the sweeps do, so that offsets the
// reader validated are also used.
#ifndef GARDEN_TESTS_FUZZ_READ_ALL_H_
#define GARDEN_TESTS_FUZZ_READ_ALL_H_

#include <cstdint>
#include <vector>

#include "common/formats/tensor_file.h"

namespace garden {

inline void ReadEveryTensor(const TensorFile& file) {
  std::vector<uint8_t> buffer(4096);
  for (const TensorInfo& info : file.tensors()) {
    (void)file.ReadChunks(info, absl::MakeSpan(buffer),
                          [](absl::Span<const uint8_t>) {
                            return absl::OkStatus();
                          });
    uint8_t first[16];
    const size_t item = DTypeSize(info.dtype);
    if (item <= sizeof(first)) {
      (void)file.ReadElements(info, 0, absl::MakeSpan(first, item));
    }
  }
}

}  // namespace garden

#endif  // GARDEN_TESTS_FUZZ_READ_ALL_H_

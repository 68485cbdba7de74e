// Writing safetensors files (the format common/formats/safetensors.h reads).
//
// The image is an 8-byte little-endian header length, the header JSON, then
// the tensors' bytes back to back in the order they were added. The header
// holds "__metadata__" first (string to string; SafetensorsWriter always
// puts {"format": "pt"} there, as PyTorch's save_file does, so Hugging Face
// transformers loads the file), then each tensor as {"dtype", "shape",
// "data_offsets"} in insertion order; it is padded with spaces so that the
// data section starts at a multiple of 8 bytes, as the reference library
// does. The same tensors and metadata always give the same bytes.
#ifndef GARDEN_COMMON_FORMATS_SAFETENSORS_WRITER_H_
#define GARDEN_COMMON_FORMATS_SAFETENSORS_WRITER_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/formats/dtype.h"

namespace garden {

// One tensor as it goes into a file. `dtype` is the header's name for it
// ("F32", "F16", ...); `bytes` are the raw little-endian elements.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// The file image of `tensors` and `metadata` (omitted when empty), laid out
// as described above. Validates nothing, so that tests can build malformed
// files (duplicate names, sizes that disagree with shapes) with it too;
// SafetensorsWriter is the checked way in.
std::string EncodeSafetensors(
    const std::vector<SafetensorsEntry>& tensors,
    const std::map<std::string, std::string>& metadata);

// Collects tensors, checking each, and produces the file.
class SafetensorsWriter {
 public:
  SafetensorsWriter();

  // Adds a tensor (its bytes are taken over). INVALID_ARGUMENT, naming the
  // tensor, for an empty name, "__metadata__", a name added before, a
  // negative dimension, or a byte count other than numel * size of dtype.
  absl::Status Add(std::string name, DType dtype, std::vector<int64_t> shape,
                   std::string bytes);

  // Sets a "__metadata__" entry (replacing "format" is allowed).
  void SetMetadata(std::string key, std::string value);

  size_t num_tensors() const { return tensors_.size(); }

  // The file image.
  std::string Encode() const;

  // Writes the image to `path` atomically (WriteFileAtomic, common/
  // file_util.h): readers see the old file or the whole new one.
  absl::Status WriteAtomic(const std::string& path) const;

 private:
  std::vector<SafetensorsEntry> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace garden

#endif  // GARDEN_COMMON_FORMATS_SAFETENSORS_WRITER_H_

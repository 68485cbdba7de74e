// Opens a checkpoint file in the format its name says: "*.safetensors"
// (safetensors.h) or "*.bin" (torch_file.h). The name is the one the
// checkpoint uses (a Hugging Face cache blob has none of its own).
#ifndef GARDEN_COMMON_FORMATS_OPEN_TENSOR_FILE_H_
#define GARDEN_COMMON_FORMATS_OPEN_TENSOR_FILE_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/formats/byte_source.h"
#include "common/formats/tensor_file.h"

namespace garden {

// The format readers' errors; FAILED_PRECONDITION for a name with neither
// suffix.
absl::StatusOr<std::unique_ptr<TensorFile>> OpenTensorFile(
    std::shared_ptr<const ByteSource> source, std::string_view name);

}  // namespace garden

#endif  // GARDEN_COMMON_FORMATS_OPEN_TENSOR_FILE_H_

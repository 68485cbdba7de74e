#include "common/formats/open_tensor_file.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/utf8.h"
#include "common/formats/safetensors.h"
#include "common/formats/torch_file.h"

namespace garden {

absl::StatusOr<std::unique_ptr<TensorFile>> OpenTensorFile(
    std::shared_ptr<const ByteSource> source, std::string_view name) {
  if (absl::EndsWith(ToAbsl(name), ".safetensors")) {
    auto file = SafetensorsFile::Open(std::move(source), {});
    if (!file.ok()) return file.status();
    return std::unique_ptr<TensorFile>(*std::move(file));
  }
  if (absl::EndsWith(ToAbsl(name), ".bin")) {
    auto file = TorchFile::Open(std::move(source));
    if (!file.ok()) return file.status();
    return std::unique_ptr<TensorFile>(*std::move(file));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      source->name(), ": \"", EscapeForMessage(name),
      "\" is neither a .safetensors nor a .bin (torch.save) file"));
}

}  // namespace garden

// Element types of safetensors files and how Garden decodes them.
#ifndef GARDEN_COMMON_FORMATS_DTYPE_H_
#define GARDEN_COMMON_FORMATS_DTYPE_H_

#include <cstddef>
#include <string_view>

#include "absl/status/statusor.h"

namespace garden {

// The dtypes of the safetensors format (every one the reference library
// knows), which include the element types of torch storages. Statistics are
// computed for the floating types F64, F32, F16 and BF16; the others are
// listed and analyses of them refused.
enum class DType {
  kBool,
  kU8,
  kI8,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kI64,
  kU64,
  kF64,
  kF8E4M3,
  kF8E5M2,
  kF8E4M3FNUZ,
  kF8E5M2FNUZ,
  kF8E8M0,
  kF6E2M3,  // 6 bits per element
  kF6E3M2,  // 6 bits per element
  kF4,      // 4 bits per element
  kC64,     // complex of two F32
};

// The name used in safetensors headers ("F16", "BF16", ...).
std::string_view DTypeName(DType dtype);

// Parses a safetensors dtype name; INVALID_ARGUMENT names unknown ones.
absl::StatusOr<DType> ParseDType(std::string_view name);

// Bits per element (4 and 6 for the sub-byte float formats).
size_t DTypeBits(DType dtype);

// Bytes per element for the whole-byte dtypes; 1 for the sub-byte ones,
// whose tensors are read and hashed as bytes.
size_t DTypeSize(DType dtype);

// True for the dtypes Garden computes statistics on (F64, F32, F16, BF16).
bool IsAnalysableFloat(DType dtype);

}  // namespace garden

#endif  // GARDEN_COMMON_FORMATS_DTYPE_H_

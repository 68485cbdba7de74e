#include "common/formats/dtype.h"

#include <array>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"

namespace garden {
namespace {

struct DTypeEntry {
  DType dtype;
  std::string_view name;
  size_t bits;
};

constexpr std::array<DTypeEntry, 22> kDTypes = {{
    {DType::kBool, "BOOL", 8},
    {DType::kU8, "U8", 8},
    {DType::kI8, "I8", 8},
    {DType::kI16, "I16", 16},
    {DType::kU16, "U16", 16},
    {DType::kF16, "F16", 16},
    {DType::kBF16, "BF16", 16},
    {DType::kI32, "I32", 32},
    {DType::kU32, "U32", 32},
    {DType::kF32, "F32", 32},
    {DType::kI64, "I64", 64},
    {DType::kU64, "U64", 64},
    {DType::kF64, "F64", 64},
    {DType::kF8E4M3, "F8_E4M3", 8},
    {DType::kF8E5M2, "F8_E5M2", 8},
    {DType::kF8E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {DType::kF8E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {DType::kF8E8M0, "F8_E8M0", 8},
    {DType::kF6E2M3, "F6_E2M3", 6},
    {DType::kF6E3M2, "F6_E3M2", 6},
    {DType::kF4, "F4", 4},
    {DType::kC64, "C64", 64},
}};

const DTypeEntry& Entry(DType dtype) {
  for (const auto& e : kDTypes) {
    if (e.dtype == dtype) return e;
  }
  return kDTypes[0];  // unreachable: every enumerator is in the table
}

}  // namespace

std::string_view DTypeName(DType dtype) { return Entry(dtype).name; }

size_t DTypeBits(DType dtype) { return Entry(dtype).bits; }

size_t DTypeSize(DType dtype) {
  const size_t bits = Entry(dtype).bits;
  return bits % 8 == 0 ? bits / 8 : 1;
}

absl::StatusOr<DType> ParseDType(std::string_view name) {
  for (const auto& e : kDTypes) {
    if (e.name == name) return e.dtype;
  }
  std::vector<absl::string_view> known;
  for (const auto& e : kDTypes) known.push_back(ToAbsl(e.name));
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype \"",
                                                 ToAbsl(name), "\" (known: ",
                                                 absl::StrJoin(known, ", "),
                                                 ")"));
}

bool IsAnalysableFloat(DType dtype) {
  return dtype == DType::kF64 || dtype == DType::kF32 || dtype == DType::kF16 ||
         dtype == DType::kBF16;
}

}  // namespace garden

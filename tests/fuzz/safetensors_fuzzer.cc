// libFuzzer target: SafetensorsFile::Open (length prefix, header JSON,
// validation) on arbitrary bytes, then every tensor read.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/formats/byte_source.h"
#include "common/formats/safetensors.h"
#include "tests/fuzz/read_all.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto source = std::make_shared<garden::MemorySource>(
      "fuzz.safetensors",
      std::string(reinterpret_cast<const char*>(data), size));
  auto file = garden::SafetensorsFile::Open(source, {});
  if (file.ok()) garden::ReadEveryTensor(**file);
  return 0;
}

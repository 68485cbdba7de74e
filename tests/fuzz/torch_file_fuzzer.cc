// libFuzzer target: TorchFile::Open (zip + restricted pickle machine) on
// arbitrary bytes, then every tensor read. Seeds: files written by
// torch.save (scripts/fuzz makes them).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/formats/byte_source.h"
#include "common/formats/torch_file.h"
#include "tests/fuzz/read_all.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto source = std::make_shared<garden::MemorySource>(
      "fuzz.bin", std::string(reinterpret_cast<const char*>(data), size));
  auto file = garden::TorchFile::Open(source);
  if (file.ok()) garden::ReadEveryTensor(**file);
  return 0;
}

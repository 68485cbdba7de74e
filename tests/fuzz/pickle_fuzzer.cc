// libFuzzer target: the restricted pickle machine alone (the torch target
// reaches it only through a valid zip). Seeds: data.pkl of torch.save files.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/formats/pickle_machine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)garden::pickle::Unpickle(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.pkl");
  return 0;
}

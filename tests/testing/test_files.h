// Test utilities: scoped temporary directories and a safetensors writer.
#ifndef GARDEN_TESTS_TESTING_TEST_FILES_H_
#define GARDEN_TESTS_TESTING_TEST_FILES_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace garden::testing {

// A fresh directory under $TEST_TMPDIR (or /tmp), removed recursively when
// this object is destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Join(std::string_view name) const;

 private:
  std::string path_;
};

// Writes `bytes` to `path` (creating or truncating it). Aborts on failure.
void WriteFile(const std::string& path, std::string_view bytes);

struct TensorSpec {
  std::string name;
  std::string dtype;  // safetensors name: "F32", "BF16", ...
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian data
};

// The whole image of a safetensors file holding `tensors` in the given order
// (contiguous from data offset 0) and `metadata` as "__metadata__" (omitted
// when empty). The header JSON is padded with spaces so that the data section
// starts at a multiple of 8, like the reference library. Nothing is validated,
// so tests can write duplicate names or mismatched sizes. (EncodeSafetensors,
// common/formats/safetensors_writer.h, which the trainer writes with.)
std::string SafetensorsBytes(
    const std::vector<TensorSpec>& tensors,
    const std::map<std::string, std::string>& metadata = {});

// Writes SafetensorsBytes(tensors, metadata) to `path`. Aborts on failure.
void WriteSafetensors(const std::string& path,
                      const std::vector<TensorSpec>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// A file image from a literal header: 8-byte little-endian length of
// `header`, then `header` (not padded), then `data`.
std::string RawSafetensorsBytes(std::string_view header, std::string_view data);

// Little-endian encodings of floats: F32 exactly, F16 and BF16 rounded to
// nearest, ties to even (overflow to infinity, NaN kept NaN).
std::string F32Bytes(const std::vector<float>& values);
std::string F16Bytes(const std::vector<float>& values);
std::string BF16Bytes(const std::vector<float>& values);

// Single-value conversions used by the above.
uint16_t FloatToF16Bits(float value);
uint16_t FloatToBF16Bits(float value);

}  // namespace garden::testing

#endif  // GARDEN_TESTS_TESTING_TEST_FILES_H_

#include "tests/testing/test_files.h"

#include <stdlib.h>

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/formats/safetensors_writer.h"

namespace garden::testing {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "test_files: %s\n", what.c_str());
  std::abort();
}

void AppendU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
      "/garden_test.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp failed for " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Join(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) Fail("cannot open " + path + " for writing");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) Fail("cannot write " + path);
}

std::string SafetensorsBytes(
    const std::vector<TensorSpec>& tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsEntry> entries;
  entries.reserve(tensors.size());
  for (const TensorSpec& t : tensors) {
    entries.push_back({t.name, t.dtype, t.shape, t.bytes});
  }
  return EncodeSafetensors(entries, metadata);
}

void WriteSafetensors(const std::string& path,
                      const std::vector<TensorSpec>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  WriteFile(path, SafetensorsBytes(tensors, metadata));
}

std::string RawSafetensorsBytes(std::string_view header,
                                std::string_view data) {
  std::string out;
  out.reserve(8 + header.size() + data.size());
  uint64_t len = header.size();
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  }
  out.append(header);
  out.append(data);
  return out;
}

uint16_t FloatToF16Bits(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) {  // infinity or NaN
    if (abs == 0x7f800000) return sign | 0x7c00;
    return sign | 0x7e00 | static_cast<uint16_t>((abs >> 13) & 0x3ff);
  }
  // 65520 = 0x477ff000 is halfway between 65504 (the largest F16) and 2^16:
  // it and everything above round to infinity.
  if (abs >= 0x477ff000) return sign | 0x7c00;
  const int exp = static_cast<int>(abs >> 23) - 127;
  const uint32_t mant = abs & 0x7fffff;
  if (exp >= -14) {  // normal F16
    uint32_t h = (static_cast<uint32_t>(exp + 15) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // may carry: fine
    return sign | static_cast<uint16_t>(h);
  }
  if (exp < -25) return sign;  // below half the smallest subnormal
  // Subnormal: units of 2^-24. value = sig * 2^(exp - 23).
  const uint32_t sig = mant | 0x800000;
  const int shift = -(exp + 1);  // 14 .. 24
  uint32_t h = sig >> shift;
  const uint32_t rem = sig & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (h & 1))) ++h;
  return sign | static_cast<uint16_t>(h);
}

uint16_t FloatToBF16Bits(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  if ((x & 0x7fffffff) > 0x7f800000) {  // NaN: keep it quiet NaN
    return static_cast<uint16_t>((x >> 16) | 0x0040);
  }
  const uint32_t rounded = x + 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(rounded >> 16);
}

std::string F32Bytes(const std::vector<float>& values) {
  std::string out;
  out.reserve(values.size() * 4);
  for (float v : values) {
    const uint32_t x = std::bit_cast<uint32_t>(v);
    for (int i = 0; i < 4; ++i)
      out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
  }
  return out;
}

std::string F16Bytes(const std::vector<float>& values) {
  std::string out;
  out.reserve(values.size() * 2);
  for (float v : values) AppendU16(&out, FloatToF16Bits(v));
  return out;
}

std::string BF16Bytes(const std::vector<float>& values) {
  std::string out;
  out.reserve(values.size() * 2);
  for (float v : values) AppendU16(&out, FloatToBF16Bits(v));
  return out;
}

}  // namespace garden::testing

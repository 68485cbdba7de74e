#include "common/formats/safetensors.h"

#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/base/absl_compat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "common/base/utf8.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

using ::garden::testing::BF16Bytes;
using ::garden::testing::F16Bytes;
using ::garden::testing::F32Bytes;
using ::garden::testing::RawSafetensorsBytes;
using ::garden::testing::SafetensorsBytes;
using ::garden::testing::TempDir;
using ::garden::testing::TensorSpec;
using ::garden::testing::WriteFile;
using ::garden::testing::WriteSafetensors;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

float F16ToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 31) {
    return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  }
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

float BF16ToFloat(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

std::vector<float> DecodeF32(absl::Span<const uint8_t> bytes) {
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

std::vector<float> Decode16(absl::Span<const uint8_t> bytes,
                            float (*decode)(uint16_t)) {
  std::vector<float> out;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    out.push_back(
        decode(static_cast<uint16_t>(bytes[i] | (bytes[i + 1] << 8))));
  }
  return out;
}

std::string Entry(const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}

class SafetensorsTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& bytes) {
    const std::string path = dir_.Join("f" + std::to_string(n_++) + ".st");
    WriteFile(path, bytes);
    return path;
  }

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> OpenBytes(
      const std::string& bytes,
      SafetensorsFile::Options options = SafetensorsFile::Options()) {
    return SafetensorsFile::Open(Write(bytes), options);
  }

  // Expects DATA_LOSS with a message "<path>: ..." containing `substr`.
  void ExpectDataLoss(
      const std::string& bytes, const std::string& substr,
      SafetensorsFile::Options options = SafetensorsFile::Options()) {
    const std::string path = Write(bytes);
    auto file = SafetensorsFile::Open(path, options);
    ASSERT_FALSE(file.ok()) << "expected an error containing: " << substr;
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss)
        << file.status();
    const std::string msg(file.status().message());
    EXPECT_THAT(msg, StartsWith(path + ": "));
    EXPECT_THAT(msg, HasSubstr(substr));
  }

  // A header with one tensor entry and `data_size` bytes of data.
  void ExpectBadEntry(const std::string& entry, size_t data_size,
                      const std::string& substr) {
    ExpectDataLoss(RawSafetensorsBytes("{\"t\":" + entry + "}",
                                       std::string(data_size, '\0')),
                   substr);
  }

  TempDir dir_;
  int n_ = 0;
};

// ---------------------------------------------------------------------------
// Valid files.

TEST_F(SafetensorsTest, F32RoundTrip) {
  const std::vector<float> values = {0.0f, -1.5f, 3.25f, 1e-30f, 6.0e7f, -0.0f};
  auto file =
      OpenBytes(SafetensorsBytes({{"w", "F32", {2, 3}, F32Bytes(values)}}));
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorInfo* info = (*file)->Find("w");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->dtype, DType::kF32);
  EXPECT_THAT(info->shape, ElementsAre(2, 3));
  EXPECT_EQ(info->numel(), 6u);
  EXPECT_EQ(info->num_bytes(), 24u);
  auto data = (*file)->Data("w");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(DecodeF32(*data), values);
  EXPECT_EQ((*file)->data_offset() % 8, 0u);
  EXPECT_EQ((*file)->file_size(), (*file)->data_offset() + 24);
}

TEST_F(SafetensorsTest, F16RoundTrip) {
  // All exactly representable in F16.
  const std::vector<float> values = {
      0.0f, 1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24), 0.099975586f};
  auto file =
      OpenBytes(SafetensorsBytes({{"h", "F16", {6}, F16Bytes(values)}}));
  ASSERT_TRUE(file.ok()) << file.status();
  auto data = (*file)->Data("h");
  ASSERT_TRUE(data.ok());
  EXPECT_EQ((*file)->Find("h")->dtype, DType::kF16);
  EXPECT_EQ(Decode16(*data, F16ToFloat), values);
}

TEST_F(SafetensorsTest, F16RoundsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -10);  // F16 ulp at 1.0
  const std::vector<float> in = {1.0f + ulp / 2,         1.0f + 3 * ulp / 2,
                                 1.0f + ulp / 2 + 1e-6f, 70000.0f,
                                 std::ldexp(1.0f, -25),  std::ldexp(3.0f, -26)};
  const std::vector<float> want = {
      1.0f,       1.0f + 2 * ulp,
      1.0f + ulp, std::numeric_limits<float>::infinity(),
      0.0f,       std::ldexp(1.0f, -24)};
  const std::string bytes = F16Bytes(in);
  EXPECT_EQ(Decode16(absl::Span<const uint8_t>(
                         reinterpret_cast<const uint8_t*>(bytes.data()),
                         bytes.size()),
                     F16ToFloat),
            want);
}

TEST_F(SafetensorsTest, BF16RoundTripAndRounding) {
  const std::vector<float> exact = {0.0f, 1.0f, -3.0f, std::ldexp(1.5f, 100),
                                    0.0078125f};
  const float ulp = std::ldexp(1.0f, -7);  // BF16 ulp at 1.0
  std::vector<float> values = exact;
  values.push_back(1.0f + ulp / 2);      // tie -> even (1.0)
  values.push_back(1.0f + 3 * ulp / 2);  // tie -> even (1 + 2 ulp)
  auto file =
      OpenBytes(SafetensorsBytes({{"b", "BF16", {7}, BF16Bytes(values)}}));
  ASSERT_TRUE(file.ok()) << file.status();
  auto data = (*file)->Data("b");
  ASSERT_TRUE(data.ok());
  std::vector<float> want = exact;
  want.push_back(1.0f);
  want.push_back(1.0f + 2 * ulp);
  EXPECT_EQ(Decode16(*data, BF16ToFloat), want);
}

TEST_F(SafetensorsTest, ScalarShape) {
  auto file =
      OpenBytes(SafetensorsBytes({{"s", "F32", {}, F32Bytes({42.0f})}}));
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorInfo* info = (*file)->Find("s");
  ASSERT_NE(info, nullptr);
  EXPECT_TRUE(info->shape.empty());
  EXPECT_EQ(info->numel(), 1u);
  EXPECT_EQ(DecodeF32(*(*file)->Data(*info)), std::vector<float>{42.0f});
}

TEST_F(SafetensorsTest, EmptyTensors) {
  auto file = OpenBytes(SafetensorsBytes({{"e0", "F32", {0}, ""},
                                          {"x", "F32", {1}, F32Bytes({1.0f})},
                                          {"e1", "BF16", {3, 0, 2}, ""}}));
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorInfo* e = (*file)->Find("e1");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->numel(), 0u);
  EXPECT_EQ(e->begin, e->end);
  EXPECT_TRUE((*file)->Data(*e)->empty());
  (*file)->Release(*e);
}

TEST_F(SafetensorsTest, ZeroTensors) {
  auto file = OpenBytes(RawSafetensorsBytes("{}", ""));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->tensors().empty());
  EXPECT_TRUE((*file)->metadata().empty());
  EXPECT_EQ((*file)->data_offset(), 10u);
}

TEST_F(SafetensorsTest, Metadata) {
  auto file = OpenBytes(SafetensorsBytes(
      {{"w", "I8", {2}, std::string("\x01\xff", 2)}},
      {{"format", "pt"}, {"step", "1200"}, {"note", "caf\xc3\xa9 \"q\""}}));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(
      (*file)->metadata(),
      (std::map<std::string, std::string>{
          {"format", "pt"}, {"note", "caf\xc3\xa9 \"q\""}, {"step", "1200"}}));
  EXPECT_EQ((*file)->tensors().size(), 1u);  // "__metadata__" is no tensor
}

TEST_F(SafetensorsTest, TensorsSortedByNameAndFind) {
  auto file = OpenBytes(
      SafetensorsBytes({{"z.weight", "F32", {1}, F32Bytes({1.0f})},
                        {"a.bias", "F16", {2}, F16Bytes({2.0f, 3.0f})},
                        {"m.x", "U8", {3}, "abc"}}));
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<std::string> names;
  for (const TensorInfo& t : (*file)->tensors()) names.push_back(t.name);
  EXPECT_THAT(names, ElementsAre("a.bias", "m.x", "z.weight"));
  EXPECT_EQ((*file)->Find("z.weight")->begin, 0u);
  EXPECT_EQ((*file)->Find("a.bias")->begin, 4u);
  EXPECT_EQ((*file)->Find("m.x")->begin, 8u);
  EXPECT_EQ((*file)->Find("absent"), nullptr);
  EXPECT_EQ((*file)->Find("a"), nullptr);
  EXPECT_EQ((*file)->Find("zz"), nullptr);
  EXPECT_EQ((*file)->Find(""), nullptr);
  auto abc = (*file)->Data("m.x");
  ASSERT_TRUE(abc.ok());
  EXPECT_EQ(std::string(abc->begin(), abc->end()), "abc");
}

TEST_F(SafetensorsTest, DataOfAbsentTensorIsNotFound) {
  auto file =
      OpenBytes(SafetensorsBytes({{"w", "F32", {1}, F32Bytes({1.0f})}}));
  ASSERT_TRUE(file.ok());
  auto data = (*file)->Data("nope");
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("\"nope\""));
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  const std::string path = dir_.Join("missing.safetensors");
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(file.status().message()), StartsWith(path + ": "));
}

TEST_F(SafetensorsTest, UnreadableFileIsPermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "root can read any file";
  const std::string path = Write(RawSafetensorsBytes("{}", ""));
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(SafetensorsTest, HeaderPaddedWithSpacesAccepted) {
  const std::string header =
      "{\"t\":" + Entry("F32", "[1]", "[0,4]") + "}" + std::string(13, ' ');
  auto file = OpenBytes(RawSafetensorsBytes(header, F32Bytes({7.0f})));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(DecodeF32(*(*file)->Data(*(*file)->Find("t"))),
            std::vector<float>{7.0f});
}

TEST_F(SafetensorsTest, LargeTensor) {
  constexpr size_t kN = 1 << 20;
  std::vector<float> values(kN);
  for (size_t i = 0; i < kN; ++i) values[i] = static_cast<float>(i) * 0.5f;
  auto file = OpenBytes(
      SafetensorsBytes({{"small", "F32", {3}, F32Bytes({1.0f, 2.0f, 3.0f})},
                        {"big", "F32", {1024, 1024}, F32Bytes(values)}}));
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorInfo* big = (*file)->Find("big");
  ASSERT_NE(big, nullptr);
  auto data = (*file)->Data("big");
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->size(), kN * 4);
  // 12 bytes of "small" come first in the data section.
  EXPECT_EQ(big->begin, 12u);
  EXPECT_EQ(DecodeF32(*data), values);
  (*file)->Release(*big);
  (*file)->Release(*big);                             // twice is harmless
  EXPECT_EQ(DecodeF32(*(*file)->Data(*big)), values);  // faults back in
}

// ---------------------------------------------------------------------------
// Malformed files: each is DATA_LOSS naming the problem.

TEST_F(SafetensorsTest, EmptyFile) { ExpectDataLoss("", "file size 0"); }

TEST_F(SafetensorsTest, ShorterThanLengthPrefix) {
  ExpectDataLoss(std::string("\x02\0\0", 3),
                 "file size 3 is shorter than the 8-byte");
}

TEST_F(SafetensorsTest, HeaderLengthZero) {
  ExpectDataLoss(std::string(8, '\0') + "{}", "header length is 0");
}

TEST_F(SafetensorsTest, HeaderLengthAboveLimit) {
  SafetensorsFile::Options options;
  options.max_header_bytes = 16;
  const std::string header = "{\"__metadata__\":{\"k\":\"v\"}}";  // 26 bytes
  ExpectDataLoss(RawSafetensorsBytes(header, ""),
                 "header length 26 exceeds the limit of 16", options);
}

// The default limit is the reference's 100,000,000 bytes. The limit is
// checked before the length is compared with the file, so a length prefix
// alone (with a 2-byte header after it) tells on which side a length falls.
std::string LengthPrefixed(uint64_t header_len) {
  std::string bytes = RawSafetensorsBytes("{}", "");
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>((header_len >> (8 * i)) & 0xff);
  }
  return bytes;
}

TEST_F(SafetensorsTest, DefaultHeaderLimitIsReferenceLimit) {
  EXPECT_EQ(SafetensorsFile::Options().max_header_bytes, 100000000u);
  // One byte over the limit: refused by the limit, naming value and limit.
  ExpectDataLoss(LengthPrefixed(100000001),
                 "header length 100000001 exceeds the limit of 100000000 "
                 "bytes");
  // 104,857,600 (100 MiB, the old limit) is over it too.
  ExpectDataLoss(LengthPrefixed(104857600),
                 "header length 104857600 exceeds the limit of 100000000 "
                 "bytes");
}

TEST_F(SafetensorsTest, HeaderAtReferenceLimitPassesTheLimitCheck) {
  // Exactly the limit is allowed; this file is only too short for it.
  const std::string bytes = LengthPrefixed(100000000);
  const std::string path = Write(bytes);
  auto file = SafetensorsFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  const std::string msg(file.status().message());
  EXPECT_THAT(msg, HasSubstr("header length 100000000 exceeds the 2 bytes "
                             "after the 8-byte length prefix"));
  EXPECT_THAT(msg, ::testing::Not(HasSubstr("limit")));
}

TEST_F(SafetensorsTest, HeaderLengthBeyondFile) {
  std::string bytes = RawSafetensorsBytes("{}", "");
  bytes[0] = 100;
  ExpectDataLoss(bytes, "header length 100 exceeds the 2 bytes");
}

TEST_F(SafetensorsTest, HugeHeaderLength) {
  ExpectDataLoss(std::string(8, '\xff') + "{}",
                 "header length 18446744073709551615 exceeds the limit");
}

TEST_F(SafetensorsTest, InvalidJson) {
  ExpectDataLoss(RawSafetensorsBytes("{\"t\":", ""),
                 "header is not valid JSON");
}

TEST_F(SafetensorsTest, TrailingGarbageAfterJson) {
  ExpectDataLoss(RawSafetensorsBytes(std::string("{}\0\0", 4), ""),
                 "header is not valid JSON: NUL byte at header offset 2");
}

TEST_F(SafetensorsTest, NulInsideHeader) {
  ExpectDataLoss(RawSafetensorsBytes(std::string("{\"a\0\":1}", 8), ""),
                 "NUL byte at header offset 3");
}

TEST_F(SafetensorsTest, InvalidUtf8) {
  ExpectDataLoss(
      RawSafetensorsBytes("{\"__metadata__\":{\"k\":\"\xc3\x28\"}}", ""),
      "header is not valid JSON");
}

TEST_F(SafetensorsTest, HeaderMustStartWithBrace) {
  ExpectDataLoss(RawSafetensorsBytes("x{}", ""),
                 "header must start with '{', got ⟦x⟧");
  ExpectDataLoss(RawSafetensorsBytes(" \t[1]", ""),
                 "header must start with '{' after leading whitespace, got "
                 "⟦[⟧");
  ExpectDataLoss(RawSafetensorsBytes("  \n ", ""),
                 "header must start with '{', got only whitespace");
}

// Writers may pad the header on either side of the object; the reference
// library's JSON parser skips ASCII whitespace there.
TEST_F(SafetensorsTest, LeadingWhitespaceBeforeHeaderObject) {
  const std::string data = F32Bytes({1.5f, -2.0f});
  const std::string header =
      " \t\r\n  {\"w\":" + Entry("F32", "[2]", "[0,8]") + "}";
  auto file = OpenBytes(RawSafetensorsBytes(header, data));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->data_offset(), 8 + header.size());
  ASSERT_EQ((*file)->tensors().size(), 1u);
  auto bytes = (*file)->Data("w");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_THAT(DecodeF32(*bytes), ElementsAre(1.5f, -2.0f));
}

TEST_F(SafetensorsTest, WhitespaceOnBothSidesOfHeaderObject) {
  const std::string data = F32Bytes({3.25f});
  // Padded to 32 bytes on the left and with trailing spaces on the right.
  std::string header = "{\"w\":" + Entry("F32", "[1]", "[0,4]") + "}";
  header = std::string(7, ' ') + header + std::string(9, ' ');
  auto file = OpenBytes(RawSafetensorsBytes(header, data));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->data_offset(), 8 + header.size());
  auto bytes = (*file)->Data("w");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_THAT(DecodeF32(*bytes), ElementsAre(3.25f));
}

TEST_F(SafetensorsTest, TrailingSpacePaddingAccepted) {
  auto file = OpenBytes(RawSafetensorsBytes("{}      ", ""));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->tensors().empty());
  EXPECT_EQ((*file)->data_offset(), 16u);
}

// Messages that quote header bytes are valid UTF-8 (clients decode them).
void ExpectUtf8Message(const absl::Status& status,
                       const std::string& substr) {
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  const std::string msg(status.message());
  EXPECT_TRUE(IsValidUtf8(msg)) << absl::CHexEscape(ToAbsl(msg));
  EXPECT_THAT(msg, HasSubstr(substr)) << absl::CHexEscape(ToAbsl(msg));
}

TEST_F(SafetensorsTest, InvalidUtf8InHeaderGivesUtf8Message) {
  // A lone continuation byte and a truncated sequence inside a string.
  auto file = OpenBytes(RawSafetensorsBytes(
      "{\"__metadata__\":{\"k\":\"a\xff\xc3\"}}", ""));
  ASSERT_FALSE(file.ok());
  ExpectUtf8Message(file.status(), "header is not valid JSON");
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("\\xff"));
}

TEST_F(SafetensorsTest, InvalidUtf8OutsideStringGivesUtf8Message) {
  auto file = OpenBytes(RawSafetensorsBytes("{\xfe\xc0\x80}", ""));
  ASSERT_FALSE(file.ok());
  ExpectUtf8Message(file.status(), "header is not valid JSON");
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("\\xfe"));
}

TEST_F(SafetensorsTest, ControlBytesInHeaderAreEscaped) {
  auto file = OpenBytes(RawSafetensorsBytes("{\"k\x01\x1b\":1}", ""));
  ASSERT_FALSE(file.ok());
  ExpectUtf8Message(file.status(), "header is not valid JSON");
  const std::string msg(file.status().message());
  EXPECT_EQ(msg.find('\x01'), std::string::npos);
  EXPECT_EQ(msg.find('\x1b'), std::string::npos);
}

TEST_F(SafetensorsTest, NonBraceFirstByteIsEscaped) {
  auto file = OpenBytes(RawSafetensorsBytes("\xff{}", ""));
  ASSERT_FALSE(file.ok());
  ExpectUtf8Message(file.status(), "header must start with '{', got ⟦\\xff⟧");
}

TEST_F(SafetensorsTest, ValidUtf8NamesKeptInMessages) {
  const std::string e = Entry("U8", "[1]", "[0,1]");
  auto file = OpenBytes(RawSafetensorsBytes(
      "{\"caf\xc3\xa9\":" + e + ",\"caf\xc3\xa9\":" + e + "}", "x"));
  ASSERT_FALSE(file.ok());
  ExpectUtf8Message(file.status(),
                    "duplicate key \"caf\xc3\xa9\" at the top level");
}

TEST_F(SafetensorsTest, NotFoundMessageForInvalidUtf8NameIsUtf8) {
  auto file = OpenBytes(SafetensorsBytes({{"w", "U8", {1}, "x"}}));
  ASSERT_TRUE(file.ok()) << file.status();
  auto data = (*file)->Data("bad\xff\xfe");
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  const std::string msg(data.status().message());
  EXPECT_TRUE(IsValidUtf8(msg)) << absl::CHexEscape(ToAbsl(msg));
  EXPECT_THAT(msg, HasSubstr("no tensor named \"bad\\xff\\xfe\""));
}

// Kept stricter than the reference on purpose (see safetensors.h).
TEST_F(SafetensorsTest, MetadataNullRefused) {
  ExpectDataLoss(RawSafetensorsBytes("{\"__metadata__\":null}", ""),
                 "\"__metadata__\" must be an object, got null");
}

TEST_F(SafetensorsTest, DimensionTwoToTheSixtyThreeRefused) {
  ExpectBadEntry(Entry("U8", "[9223372036854775808]", "[0,0]"), 0,
                 "shape[0] = ⟦9223372036854775808⟧ is not an integer in "
                 "[0, 2^63)");
}

TEST_F(SafetensorsTest, HeaderNotAnObject) {
  ExpectDataLoss(RawSafetensorsBytes("[1,2]", ""),
                 "header must start with '{'");
}

TEST_F(SafetensorsTest, DuplicateTopLevelKey) {
  const std::string e = Entry("U8", "[1]", "[0,1]");
  ExpectDataLoss(RawSafetensorsBytes("{\"t\":" + e + ",\"t\":" + e + "}", "x"),
                 "duplicate key \"t\" at the top level");
}

TEST_F(SafetensorsTest, DuplicateFieldInEntry) {
  ExpectBadEntry(
      "{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]"
      "}",
      1, "duplicate key \"dtype\"");
}

TEST_F(SafetensorsTest, DeepNesting) {
  ExpectDataLoss(
      RawSafetensorsBytes("{\"__metadata__\":" + std::string(100, '[') +
                              std::string(100, ']') + "}",
                          ""),
      "nesting depth exceeds 64");
}

TEST_F(SafetensorsTest, EntryNotAnObject) {
  ExpectBadEntry("[1,2]", 0,
                 "tensor \"t\": entry must be an object, got array");
}

TEST_F(SafetensorsTest, MissingField) {
  ExpectBadEntry("{\"dtype\":\"F32\",\"shape\":[1]}", 4,
                 "tensor \"t\": missing field \"data_offsets\"");
}

TEST_F(SafetensorsTest, ExtraField) {
  ExpectBadEntry(
      "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"extra\":1}", 1,
      "unexpected field ⟦extra⟧");
}

TEST_F(SafetensorsTest, UnknownDType) {
  ExpectBadEntry(Entry("F128", "[1]", "[0,16]"), 16, "unknown dtype \"F128\"");
}

// Every dtype of the format is listed, so a file holding a few of the newer
// ones is still served; only analyses refuse them.
TEST_F(SafetensorsTest, NewerDTypesAreListedWithTheirSizes) {
  const std::string header =
      "{\"q\":" + Entry("F4", "[6]", "[0,3]") +
      ",\"r\":" + Entry("F6_E2M3", "[4]", "[3,6]") +
      ",\"c\":" + Entry("C64", "[1]", "[6,14]") +
      ",\"e\":" + Entry("F8_E8M0", "[2]", "[14,16]") +
      ",\"w\":" + Entry("F32", "[1]", "[16,20]") + "}";
  std::string data(16, '\x11');
  data += F32Bytes({2.5f});
  auto file = OpenBytes(RawSafetensorsBytes(header, data));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Find("q")->dtype, DType::kF4);
  EXPECT_EQ((*file)->Find("q")->num_bytes(), 3u);
  EXPECT_EQ((*file)->Find("r")->dtype, DType::kF6E2M3);
  EXPECT_EQ((*file)->Find("c")->dtype, DType::kC64);
  EXPECT_EQ((*file)->Find("e")->dtype, DType::kF8E8M0);
  EXPECT_FALSE(IsAnalysableFloat(DType::kF4));
  std::string got;
  std::vector<uint8_t> buffer(2);  // F4 is read in bytes
  ASSERT_TRUE((*file)
                  ->ReadChunks(*(*file)->Find("q"), absl::MakeSpan(buffer),
                               [&](absl::Span<const uint8_t> c) {
                                 got.append(c.begin(), c.end());
                                 return absl::OkStatus();
                               })
                  .ok());
  EXPECT_EQ(got, "\x11\x11\x11");
  EXPECT_EQ(DecodeF32(*(*file)->Data("w")), std::vector<float>{2.5f});
}

TEST_F(SafetensorsTest, SubByteTensorMustFillWholeBytes) {
  ExpectBadEntry(Entry("F4", "[3]", "[0,2]"), 2,
                 "holds 12 bits, not a whole number of bytes");
}

TEST_F(SafetensorsTest, FileShrinkingWhileReadIsDataLossNotACrash) {
  const std::vector<float> values(4096, 1.0f);
  const std::string path =
      Write(SafetensorsBytes({{"w", "F32", {4096}, F32Bytes(values)}}));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(truncate(path.c_str(), 100), 0);
  std::vector<uint8_t> buffer(1024);
  const absl::Status read = (*file)->ReadChunks(
      *(*file)->Find("w"), absl::MakeSpan(buffer),
      [](absl::Span<const uint8_t>) { return absl::OkStatus(); });
  EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss) << read;
  EXPECT_THAT(std::string(read.message()),
              HasSubstr("truncated while being read: the file ended at byte "
                        "100"));
  EXPECT_THAT(std::string(read.message()), HasSubstr("tensor \"w\""));
}

TEST_F(SafetensorsTest, DTypeNotAString) {
  ExpectBadEntry("{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}", 4,
                 "dtype must be a string, got number");
}

TEST_F(SafetensorsTest, ShapeNotAnArray) {
  ExpectBadEntry(Entry("U8", "3", "[0,3]"), 3,
                 "shape must be an array, got number");
}

TEST_F(SafetensorsTest, NegativeDimension) {
  ExpectBadEntry(Entry("U8", "[2,-3]", "[0,6]"), 6,
                 "shape[1] = ⟦-3⟧ is not an integer in [0, 2^63)");
}

TEST_F(SafetensorsTest, FractionalDimension) {
  ExpectBadEntry(Entry("U8", "[2.0]", "[0,2]"), 2,
                 "shape[0] = ⟦2.0⟧ is not an integer");
}

TEST_F(SafetensorsTest, RankAboveSixteen) {
  ExpectBadEntry(Entry("U8", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", "[0,1]"), 1,
                 "shape rank 17 exceeds the maximum rank 16");
}

TEST_F(SafetensorsTest, ByteSizeOverflows) {
  ExpectBadEntry(Entry("F32", "[4294967296,1073741824]", "[0,0]"), 0,
                 "overflows 2^64 bytes");
}

TEST_F(SafetensorsTest, F64ByteSizeOverflows) {
  // 2^62 * 8 overflows in the byte count of an F64 tensor.
  ExpectBadEntry(Entry("F64", "[4611686018427387904]", "[0,0]"), 0,
                 "overflows 2^64 bytes");
}

TEST_F(SafetensorsTest, OffsetsNotTwo) {
  ExpectBadEntry(Entry("U8", "[1]", "[0,1,2]"), 1,
                 "data_offsets must be an array of 2 integers, got ⟦[0,1,2]⟧");
}

TEST_F(SafetensorsTest, NegativeOffset) {
  ExpectBadEntry(Entry("U8", "[1]", "[-1,0]"), 1,
                 "data_offsets ⟦[-1,0]⟧ must be non-negative integers");
}

TEST_F(SafetensorsTest, BeginAfterEnd) {
  ExpectBadEntry(Entry("U8", "[0]", "[3,1]"), 3,
                 "data_offsets begin 3 > end 1");
}

TEST_F(SafetensorsTest, Truncated) {
  std::string bytes =
      SafetensorsBytes({{"w", "F32", {4}, F32Bytes({1, 2, 3, 4})}});
  bytes.resize(bytes.size() - 5);
  ExpectDataLoss(bytes,
                 "truncated: data_offsets end 16 exceeds the data section "
                 "size 11");
}

TEST_F(SafetensorsTest, SizeMismatch) {
  ExpectBadEntry(Entry("F32", "[2,2]", "[0,12]"), 12,
                 "data_offsets [0, 12) span 12 bytes but shape ⟦[2,2]⟧ of F32 "
                 "needs 16 bytes");
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  ExpectDataLoss(
      RawSafetensorsBytes("{\"a\":" + Entry("U8", "[4]", "[0,4]") +
                              ",\"b\":" + Entry("U8", "[4]", "[2,6]") + "}",
                          std::string(6, 'x')),
      "tensor \"b\" [2, 6) overlaps tensor \"a\" [0, 4)");
}

TEST_F(SafetensorsTest, HoleBetweenTensors) {
  ExpectDataLoss(
      RawSafetensorsBytes("{\"a\":" + Entry("U8", "[4]", "[0,4]") +
                              ",\"b\":" + Entry("U8", "[4]", "[6,10]") + "}",
                          std::string(10, 'x')),
      "hole in the data section: bytes [4, 6)");
}

TEST_F(SafetensorsTest, HoleAtStart) {
  ExpectBadEntry(Entry("U8", "[2]", "[1,3]"), 3,
                 "hole in the data section: bytes [0, 1)");
}

TEST_F(SafetensorsTest, TrailingBytesAfterLastTensor) {
  ExpectDataLoss(SafetensorsBytes({{"w", "U8", {2}, "ab"}}) + "junk",
                 "trailing bytes in the data section: bytes [2, 6)");
}

TEST_F(SafetensorsTest, MetadataNotAnObject) {
  ExpectDataLoss(RawSafetensorsBytes("{\"__metadata__\":[\"a\"]}", ""),
                 "\"__metadata__\" must be an object, got array");
}

TEST_F(SafetensorsTest, MetadataValueNotAString) {
  ExpectDataLoss(RawSafetensorsBytes("{\"__metadata__\":{\"step\":12}}", ""),
                 "\"__metadata__\" value for key ⟦step⟧ must be a string, "
                 "got number");
}

TEST_F(SafetensorsTest, DirectoryIsNotARegularFile) {
  auto file = SafetensorsFile::Open(dir_.path());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(file.status().message()),
              HasSubstr("not a regular file"));
}

}  // namespace
}  // namespace garden

#include "common/formats/torch_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/formats/byte_source.h"
#include "common/formats/zip_archive.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

using ::garden::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using Json = nlohmann::json;

// The fixtures are written by tests/testing/torch_fixtures.py with Debian's
// PyTorch; see its docstring for the manifest's fields.
constexpr char kPython[] = "/usr/bin/python3";
constexpr char kFixtures[] =
    GARDEN_SOURCE_DIR "/tests/testing/torch_fixtures.py";

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

double F16ToDouble(uint16_t h) {
  const int sign = (h & 0x8000) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0) return sign * std::ldexp(mant, -24);  // zero, subnormal
  if (exp == 31) return mant ? NAN : sign * INFINITY;
  return sign * std::ldexp(mant + 1024, exp - 25);
}

double BF16ToDouble(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Every element of a little-endian buffer of `dtype`, as a double (exact for
// the dtypes torch storages have and the fixtures' values).
std::vector<double> Decode(DType dtype, const std::string& bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t item = DTypeSize(dtype);
  std::vector<double> out;
  for (size_t i = 0; i + item <= bytes.size(); i += item) {
    const uint8_t* e = p + i;
    switch (dtype) {
      case DType::kF16: out.push_back(F16ToDouble(Load<uint16_t>(e))); break;
      case DType::kBF16: out.push_back(BF16ToDouble(Load<uint16_t>(e))); break;
      case DType::kF32: out.push_back(Load<float>(e)); break;
      case DType::kF64: out.push_back(Load<double>(e)); break;
      case DType::kBool:
      case DType::kU8: out.push_back(*e); break;
      case DType::kI8: out.push_back(Load<int8_t>(e)); break;
      case DType::kI16: out.push_back(Load<int16_t>(e)); break;
      case DType::kI32: out.push_back(Load<int32_t>(e)); break;
      case DType::kI64:
        out.push_back(static_cast<double>(Load<int64_t>(e)));
        break;
      default:
        ADD_FAILURE() << "no decoder for " << DTypeName(dtype);
        return out;
    }
  }
  return out;
}

// The tensor's bytes through ReadChunks with a 24-byte buffer (whole
// elements of every dtype, and several chunks for most tensors).
absl::StatusOr<std::string> ReadAll(const TensorFile& file,
                                    const TensorInfo& info) {
  std::string out;
  uint8_t buffer[24];
  absl::Status status = file.ReadChunks(
      info, absl::MakeSpan(buffer), [&](absl::Span<const uint8_t> chunk) {
        if (chunk.size() % DTypeSize(info.dtype) != 0) {
          return absl::InternalError("a chunk of partial elements");
        }
        out.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::string> ReadRange(const TensorFile& file,
                                      const TensorInfo& info, uint64_t first,
                                      uint64_t count) {
  std::string out(count * DTypeSize(info.dtype), '\0');
  absl::Status status = file.ReadElements(
      info, first,
      absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  if (!status.ok()) return status;
  return out;
}

std::vector<double> Iota(double first, double last) {
  std::vector<double> out;
  for (double v = first; v <= last; ++v) out.push_back(v);
  return out;
}

absl::StatusCode CodeNamed(const std::string& name) {
  if (name == "DATA_LOSS") return absl::StatusCode::kDataLoss;
  if (name == "FAILED_PRECONDITION") {
    return absl::StatusCode::kFailedPrecondition;
  }
  ADD_FAILURE() << "unknown status code in the manifest: " << name;
  return absl::StatusCode::kUnknown;
}

class TorchFileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string probe = absl::StrCat(
        kPython, " -c 'import torch' >/dev/null 2>&1");
    if (std::system(probe.c_str()) != 0) {
      skip_ = "python3-torch is not installed: run scripts/setup";
      GTEST_SKIP() << skip_;
    }
    dir_ = new TempDir();
    const std::string command =
        absl::StrCat(kPython, " ", ShellQuote(kFixtures), " ",
                     ShellQuote(dir_->path()));
    if (const int rc = std::system(command.c_str()); rc != 0) {
      error_ = absl::StrCat("`", command, "` failed (status ", rc, ")");
      return;
    }
    std::ifstream in(dir_->Join("manifest.json"));
    manifest_ = new Json(Json::parse(in, nullptr, /*allow_exceptions=*/false));
    if (!manifest_->is_array()) error_ = "manifest.json is not a JSON list";
  }

  static void TearDownTestSuite() {
    delete manifest_;
    manifest_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_THAT(error_, IsEmpty());
  }

  static std::string Fixture(const std::string& name) {
    return dir_->Join(name);
  }

  static std::vector<Json> Cases(bool ok) {
    std::vector<Json> out;
    for (const Json& c : *manifest_) {
      if ((c.at("expect") == "ok") == ok) out.push_back(c);
    }
    return out;
  }

  static std::unique_ptr<TorchFile> OpenOrDie(const std::string& name) {
    auto file = TorchFile::Open(Fixture(name));
    EXPECT_TRUE(file.ok()) << file.status();
    return file.ok() ? *std::move(file) : nullptr;
  }

  static inline TempDir* dir_ = nullptr;
  static inline Json* manifest_ = nullptr;
  static inline std::string skip_;
  static inline std::string error_;
};

// Expects the tensor's values, read whole (ReadChunks), in part
// (ReadElements) and mapped (Data).
void ExpectValues(const TensorFile& file, const std::string& name,
                  const std::vector<double>& values) {
  SCOPED_TRACE(name);
  const TensorInfo* info = file.Find(name);
  ASSERT_NE(info, nullptr);
  ASSERT_EQ(info->numel(), values.size());
  auto bytes = ReadAll(file, *info);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_THAT(Decode(info->dtype, *bytes), ElementsAreArray(values));
  if (values.size() >= 2) {
    const uint64_t first = values.size() / 2;
    auto tail = ReadRange(file, *info, first, values.size() - first);
    ASSERT_TRUE(tail.ok()) << tail.status();
    EXPECT_THAT(Decode(info->dtype, *tail),
                ElementsAreArray(values.begin() + first, values.end()));
  }
  auto mapped = file.Data(*info);
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  EXPECT_EQ(std::string(mapped->begin(), mapped->end()), *bytes);
}

// Expects every way of reading the tensor to be refused for its strides.
void ExpectNotRead(const TensorFile& file, const TensorInfo& info) {
  SCOPED_TRACE(info.name);
  const std::string start = file.path() + ": ";
  auto offset = file.FileOffset(info);
  EXPECT_EQ(offset.status().code(), absl::StatusCode::kFailedPrecondition)
      << offset.status();
  EXPECT_THAT(std::string(offset.status().message()), StartsWith(start));
  EXPECT_THAT(std::string(offset.status().message()), HasSubstr("strides"));
  auto all = ReadAll(file, info);
  EXPECT_EQ(all.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(all.status().message()), HasSubstr("strides"));
  auto part = ReadRange(file, info, 0, 1);
  EXPECT_EQ(part.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(part.status().message()), HasSubstr("strides"));
  EXPECT_EQ(file.Data(info).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------------------

TEST_F(TorchFileTest, ManifestListsEnoughCases) {
  EXPECT_GE(Cases(/*ok=*/true).size(), 10u);
  EXPECT_GE(Cases(/*ok=*/false).size(), 25u);
  for (const Json& c : *manifest_) {
    EXPECT_TRUE(Exists(Fixture(c.at("file").get<std::string>())))
        << c.at("file");
  }
}

// Every good fixture: the tensors torch.save wrote, each with its dtype,
// shape, strides and offset, and its values read back exactly.
TEST_F(TorchFileTest, GoodFilesMatchTheManifest) {
  for (const Json& c : Cases(/*ok=*/true)) {
    const std::string name = c.at("file").get<std::string>();
    SCOPED_TRACE(absl::StrCat(name, ": ", c.at("what").get<std::string>()));
    std::unique_ptr<TorchFile> file = OpenOrDie(name);
    if (file == nullptr) continue;
    EXPECT_EQ(file->format(), "pytorch");
    EXPECT_EQ(file->prefix(), c.at("prefix").get<std::string>());
    EXPECT_THAT(file->metadata(), IsEmpty());
    const Json& tensors = c.at("tensors");
    EXPECT_EQ(file->tensors().size(), tensors.size());
    for (const auto& [tensor_name, t] : tensors.items()) {
      SCOPED_TRACE(tensor_name);
      const TensorInfo* info = file->Find(tensor_name);
      ASSERT_NE(info, nullptr);
      EXPECT_EQ(DTypeName(info->dtype), t.at("dtype").get<std::string>());
      EXPECT_EQ(info->shape, t.at("shape").get<std::vector<int64_t>>());
      EXPECT_EQ(info->strides, t.at("strides").get<std::vector<int64_t>>());
      EXPECT_EQ(info->contiguous(), t.at("contiguous").get<bool>());
      EXPECT_EQ(info->begin, t.at("offset_bytes").get<uint64_t>());
      EXPECT_EQ(info->num_bytes(), info->numel() * DTypeSize(info->dtype));
      if (!info->contiguous()) {
        ExpectNotRead(*file, *info);
      } else if (t.contains("values_f64")) {
        ExpectValues(*file, tensor_name,
                     t.at("values_f64").get<std::vector<double>>());
      } else {
        auto bytes = ReadAll(*file, *info);
        ASSERT_TRUE(bytes.ok()) << bytes.status();
        EXPECT_EQ(bytes->size(), info->num_bytes());
      }
    }
  }
}

// One malformed case of the manifest: refused with its code and a message
// naming the file; a pickle that would run code runs nothing.
void ExpectRefused(const Json& c, const std::string& path) {
  const std::string stage = c.value("stage", "open");
  absl::Status status;
  auto file = TorchFile::Open(path);
  if (stage == "open") {
    ASSERT_FALSE(file.ok()) << "opened; expected "
                            << c.at("expect").get<std::string>();
    status = file.status();
  } else {
    ASSERT_EQ(stage, "read");
    ASSERT_TRUE(file.ok()) << file.status();
    for (const TensorInfo& info : (*file)->tensors()) {
      status = ReadAll(**file, info).status();
      if (!status.ok()) break;
    }
    ASSERT_FALSE(status.ok()) << "every tensor was read";
  }
  EXPECT_EQ(status.code(), CodeNamed(c.at("expect").get<std::string>()))
      << status;
  const std::string message(status.message());
  EXPECT_THAT(message, StartsWith(path + ": "));
  EXPECT_THAT(message, HasSubstr(c.at("substr").get<std::string>()));
  if (c.contains("must_not_exist")) {
    EXPECT_FALSE(Exists(c.at("must_not_exist").get<std::string>()))
        << "the pickle ran code";
  }
}

TEST_F(TorchFileTest, MalformedFilesAreRefused) {
  for (const Json& c : Cases(/*ok=*/false)) {
    const std::string name = c.at("file").get<std::string>();
    SCOPED_TRACE(absl::StrCat(name, ": ", c.at("what").get<std::string>()));
    ExpectRefused(c, Fixture(name));
  }
}

// The bound on data.pkl is the file's problem, not the caller's.
TEST_F(TorchFileTest, PickleOverTheLimit) {
  const std::string path = Fixture("pytorch_model.bin");
  auto source = LocalFileSource::Open(path);
  ASSERT_TRUE(source.ok()) << source.status();
  TorchFile::Options options;
  options.max_pickle_bytes = 100;
  auto file = TorchFile::Open(*source, options);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss)
      << file.status();
  EXPECT_THAT(std::string(file.status().message()), StartsWith(path + ": "));
  EXPECT_THAT(std::string(file.status().message()),
              HasSubstr("more than the limit of 100 (max_pickle_bytes)"));
  // Far less than data.pkl was read.
  EXPECT_LT((*source)->bytes_read(), 70000u);
}

TEST_F(TorchFileTest, PythiaShapedStateDict) {
  std::unique_ptr<TorchFile> file = OpenOrDie("pytorch_model.bin");
  ASSERT_NE(file, nullptr);
  // torch 1.13 names the prefix after the file's stem.
  EXPECT_EQ(file->prefix(), "pytorch_model");
  EXPECT_EQ(file->tensors().size(), 2u * 15 + 4);
  const TensorInfo* embed = file->Find("gpt_neox.embed_in.weight");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(embed->dtype, DType::kF16);
  EXPECT_THAT(embed->shape, ElementsAre(16, 8));

  const TensorInfo* bias = file->Find("gpt_neox.layers.0.attention.bias");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->dtype, DType::kU8);
  EXPECT_THAT(bias->shape, ElementsAre(1, 1, 8, 8));
  std::vector<double> tril;
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 8; ++j) tril.push_back(j <= i ? 1 : 0);
  }
  ExpectValues(*file, bias->name, tril);

  const TensorInfo* masked =
      file->Find("gpt_neox.layers.1.attention.masked_bias");
  ASSERT_NE(masked, nullptr);
  EXPECT_EQ(masked->dtype, DType::kF32);
  EXPECT_THAT(masked->shape, IsEmpty());
  ExpectValues(*file, masked->name, {-1e9});
  ExpectValues(*file, "gpt_neox.layers.0.attention.rotary_emb.inv_freq",
               {1.0, static_cast<double>(0.01f)});
  ExpectValues(*file, "gpt_neox.final_layer_norm.weight",
               std::vector<double>(8, 1.0));
}

TEST_F(TorchFileTest, OpensFromAnyByteSource) {
  const std::string path = Fixture("pytorch_model.bin");
  auto source = std::make_shared<MemorySource>("memory:pytorch_model.bin",
                                               ReadFileBytes(path));
  auto file = TorchFile::Open(source);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), "memory:pytorch_model.bin");
  std::unique_ptr<TorchFile> local = OpenOrDie("pytorch_model.bin");
  ASSERT_NE(local, nullptr);
  ASSERT_EQ((*file)->tensors().size(), local->tensors().size());
  for (const TensorInfo& info : local->tensors()) {
    SCOPED_TRACE(info.name);
    const TensorInfo* same = (*file)->Find(info.name);
    ASSERT_NE(same, nullptr);
    auto a = ReadAll(*local, info);
    auto b = ReadAll(**file, *same);
    ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
    EXPECT_EQ(*a, *b);
  }
}

TEST_F(TorchFileTest, EveryStorageDType) {
  std::unique_ptr<TorchFile> file = OpenOrDie("dtypes.bin");
  ASSERT_NE(file, nullptr);
  const std::pair<const char*, DType> expected[] = {
      {"half", DType::kF16},   {"bfloat16", DType::kBF16},
      {"float32", DType::kF32}, {"float64", DType::kF64},
      {"uint8", DType::kU8},   {"int8", DType::kI8},
      {"int16", DType::kI16},  {"int32", DType::kI32},
      {"int64", DType::kI64},  {"bool", DType::kBool}};
  ASSERT_EQ(file->tensors().size(), std::size(expected));
  for (const auto& [name, dtype] : expected) {
    const TensorInfo* info = file->Find(name);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_EQ(info->dtype, dtype) << name;
  }
  // Spot checks of the extremes (the manifest test checks every value).
  auto head = [&](const char* name, uint64_t n) {
    auto bytes = ReadRange(*file, *file->Find(name), 0, n);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    return bytes.ok() ? Decode(file->Find(name)->dtype, *bytes)
                      : std::vector<double>();
  };
  EXPECT_THAT(head("half", 7), ElementsAre(0.0, -0.0, 1.0, -2.5, 65504.0,
                                           std::ldexp(1.0, -24),
                                           std::ldexp(1.0, -14)));
  const std::vector<double> zeros = head("half", 2);
  ASSERT_EQ(zeros.size(), 2u);
  EXPECT_FALSE(std::signbit(zeros[0]));
  EXPECT_TRUE(std::signbit(zeros[1]));
  EXPECT_THAT(head("int8", 2), ElementsAre(-128, 127));
  EXPECT_THAT(head("int16", 2), ElementsAre(-32768, 32767));
  EXPECT_THAT(head("int32", 2), ElementsAre(-2147483648.0, 2147483647.0));
  EXPECT_THAT(head("int64", 3),
              ElementsAre(-std::ldexp(1.0, 53), std::ldexp(1.0, 53), -1));
  EXPECT_THAT(head("uint8", 2), ElementsAre(0, 255));
  EXPECT_THAT(head("float64", 6),
              ElementsAre(0.0, -0.0, 1.0, -2.5, 1.7e308, 5e-324));
}

TEST_F(TorchFileTest, ViewsOfOneStorage) {
  std::unique_ptr<TorchFile> file = OpenOrDie("shared.bin");
  ASSERT_NE(file, nullptr);
  const TensorInfo* head = file->Find("head");
  const TensorInfo* tail = file->Find("tail");
  const TensorInfo* whole = file->Find("whole");
  const TensorInfo* other = file->Find("other");
  ASSERT_TRUE(head && tail && whole && other);
  EXPECT_EQ(head->segment, whole->segment);
  EXPECT_EQ(tail->segment, whole->segment);
  EXPECT_NE(other->segment, whole->segment);
  EXPECT_EQ(head->begin, 3u * 2);
  EXPECT_EQ(tail->begin, 9u * 2);
  EXPECT_EQ(whole->begin, 0u);
  EXPECT_THAT(tail->shape, ElementsAre(11, 1));
  EXPECT_TRUE(tail->contiguous());
  ExpectValues(*file, "head", Iota(3, 8));
  ExpectValues(*file, "tail", Iota(9, 19));
  ExpectValues(*file, "whole", Iota(0, 19));
  ExpectValues(*file, "other", {-0.0, -1, -2, -3, -4});
  auto head_at = file->FileOffset(*head);
  auto whole_at = file->FileOffset(*whole);
  ASSERT_TRUE(head_at.ok() && whole_at.ok());
  EXPECT_EQ(*head_at, *whole_at + 6);
}

TEST_F(TorchFileTest, NonContiguousViewsAreListedNotRead) {
  std::unique_ptr<TorchFile> file = OpenOrDie("strided.bin");
  ASSERT_NE(file, nullptr);
  const TensorInfo* t = file->Find("t");
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(t->shape, ElementsAre(4, 3));
  EXPECT_THAT(t->strides, ElementsAre(1, 4));
  EXPECT_FALSE(t->contiguous());
  ExpectNotRead(*file, *t);
  const TensorInfo* expanded = file->Find("expanded");
  ASSERT_NE(expanded, nullptr);
  EXPECT_THAT(expanded->strides, ElementsAre(0, 1));
  EXPECT_FALSE(expanded->contiguous());
  ExpectNotRead(*file, *expanded);
  // The transposed tensor's storage is m's, which reads.
  EXPECT_EQ(file->Find("m")->segment, t->segment);
  ExpectValues(*file, "m", Iota(0, 11));
  // A size-1 dimension's stride does not matter.
  const TensorInfo* column = file->Find("column");
  ASSERT_NE(column, nullptr);
  EXPECT_THAT(column->strides, ElementsAre(1, 1));
  EXPECT_TRUE(column->contiguous());
  ExpectValues(*file, "column", {1, 2});
}

TEST_F(TorchFileTest, ModuleStateDictAndParameters) {
  std::unique_ptr<TorchFile> linear = OpenOrDie("linear.bin");
  ASSERT_NE(linear, nullptr);
  ASSERT_EQ(linear->tensors().size(), 2u);
  EXPECT_EQ(linear->tensors()[0].name, "bias");
  EXPECT_EQ(linear->tensors()[1].name, "weight");
  EXPECT_THAT(linear->Find("weight")->shape, ElementsAre(3, 4));
  EXPECT_EQ(linear->Find("weight")->dtype, DType::kF32);

  std::unique_ptr<TorchFile> params = OpenOrDie("parameter.bin");
  ASSERT_NE(params, nullptr);
  ASSERT_EQ(params->tensors().size(), 3u);
  EXPECT_THAT(params->Find("p")->shape, ElementsAre(2, 3));
  EXPECT_THAT(params->Find("frozen")->shape, ElementsAre(3));
  EXPECT_THAT(params->Find("plain")->shape, ElementsAre(2));
}

TEST_F(TorchFileTest, EmptyTensorsAndScalars) {
  std::unique_ptr<TorchFile> file = OpenOrDie("empty_scalar.bin");
  ASSERT_NE(file, nullptr);
  for (const char* name : {"empty", "empty_1d"}) {
    SCOPED_TRACE(name);
    const TensorInfo* info = file->Find(name);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->numel(), 0u);
    EXPECT_EQ(info->num_bytes(), 0u);
    EXPECT_TRUE(info->contiguous());
    int calls = 0;
    uint8_t buffer[8];
    EXPECT_TRUE(file->ReadChunks(*info, absl::MakeSpan(buffer),
                                 [&](absl::Span<const uint8_t>) {
                                   ++calls;
                                   return absl::OkStatus();
                                 })
                    .ok());
    EXPECT_EQ(calls, 0);
    EXPECT_TRUE(file->ReadElements(*info, 0, {}).ok());
  }
  EXPECT_THAT(file->Find("empty")->shape, ElementsAre(0, 3));
  const TensorInfo* scalar = file->Find("scalar");
  ASSERT_NE(scalar, nullptr);
  EXPECT_THAT(scalar->shape, IsEmpty());
  EXPECT_EQ(scalar->numel(), 1u);
  ExpectValues(*file, "scalar", {2.5});
  ExpectValues(*file, "int_scalar", {-7});
  EXPECT_EQ(file->Find("int_scalar")->dtype, DType::kI64);
}

TEST_F(TorchFileTest, ArchivePrefixes) {
  for (const char* name : {"archive_prefix.bin", "torch2_layout.bin"}) {
    SCOPED_TRACE(name);
    std::unique_ptr<TorchFile> file = OpenOrDie(name);
    ASSERT_NE(file, nullptr);
    EXPECT_EQ(file->prefix(), "archive");
    EXPECT_EQ(file->tensors().size(), 3u);
    EXPECT_NE(file->Find("a.weight"), nullptr);
  }
  std::unique_ptr<TorchFile> file = OpenOrDie("handmade_ok.bin");
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->prefix(), "handmade_ok");
}

// Open reads the tail, the central directory and data.pkl; a read adds the
// tensor's local header and bytes: nowhere near the 4 MiB tensor.
TEST_F(TorchFileTest, ReadsOnlyWhatItNeeds) {
  const std::string path = Fixture("large.bin");
  uint64_t pkl_bytes = 0;
  {
    auto probe = LocalFileSource::Open(path);
    ASSERT_TRUE(probe.ok()) << probe.status();
    auto zip = ZipArchive::Open(*probe);
    ASSERT_TRUE(zip.ok()) << zip.status();
    const ZipEntry* pkl = (*zip)->Find("large/data.pkl");
    ASSERT_NE(pkl, nullptr);
    pkl_bytes = pkl->size;
  }
  auto source = LocalFileSource::Open(path);
  ASSERT_TRUE(source.ok()) << source.status();
  auto file = TorchFile::Open(*source);
  ASSERT_TRUE(file.ok()) << file.status();
  const uint64_t size = (*file)->file_size();
  EXPECT_GT(size, 4u << 20);
  const TensorInfo* small = (*file)->Find("z_small");
  ASSERT_NE(small, nullptr);
  ASSERT_EQ(small->num_bytes(), 4u * 8 * 4);
  auto bytes = ReadAll(**file, *small);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const uint64_t after_small = (*source)->bytes_read();
  EXPECT_LT(after_small, small->num_bytes() + pkl_bytes + 70000 + 4096);
  EXPECT_LT(after_small, size / 32);

  // The big tensor costs its bytes and its local header.
  const TensorInfo* big = (*file)->Find("big");
  ASSERT_NE(big, nullptr);
  ASSERT_EQ(big->num_bytes(), 1024u * 2048 * 2);
  uint64_t seen = 0;
  std::vector<uint8_t> buffer(1 << 16);
  ASSERT_TRUE((*file)
                  ->ReadChunks(*big, absl::MakeSpan(buffer),
                               [&](absl::Span<const uint8_t> chunk) {
                                 seen += chunk.size();
                                 return absl::OkStatus();
                               })
                  .ok());
  EXPECT_EQ(seen, big->num_bytes());
  EXPECT_LT((*source)->bytes_read() - after_small, big->num_bytes() + 4096);
}

// A file that shrinks after Open: reads past its new end are DATA_LOSS (pread
// through the source, never a mapping), reads before it still work.
TEST_F(TorchFileTest, TruncatedAfterOpen) {
  TempDir dir;
  const std::string path = dir.Join("large.bin");
  std::filesystem::copy_file(Fixture("large.bin"), path);
  auto file = TorchFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorInfo* big = (*file)->Find("big");
  ASSERT_NE(big, nullptr);
  auto big_at = (*file)->FileOffset(*big);  // reads its local header
  ASSERT_TRUE(big_at.ok()) << big_at.status();
  ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(*big_at + (1 << 20))), 0);

  auto cut = ReadAll(**file, *big);
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss) << cut.status();
  // "<path>: tensor "big": <what the source said>", like every message.
  EXPECT_THAT(std::string(cut.status().message()),
              StartsWith(absl::StrCat(path, ": tensor \"big\": truncated while "
                                            "being read")));

  // z_small's local header lies past the new end too.
  auto after = ReadAll(**file, *(*file)->Find("z_small"));
  EXPECT_EQ(after.status().code(), absl::StatusCode::kDataLoss)
      << after.status();
  EXPECT_THAT(std::string(after.status().message()), StartsWith(path + ": "));

  // a_small lies before it.
  auto before = ReadAll(**file, *(*file)->Find("a_small"));
  EXPECT_TRUE(before.ok()) << before.status();

  // Cut to nothing: every read fails, none crashes.
  ASSERT_EQ(truncate(path.c_str(), 0), 0);
  for (const TensorInfo& info : (*file)->tensors()) {
    EXPECT_EQ(ReadAll(**file, info).status().code(),
              absl::StatusCode::kDataLoss)
        << info.name;
  }
}

TEST_F(TorchFileTest, MissingFile) {
  auto file = TorchFile::Open(Fixture("no_such.bin"));
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(file.status().message()),
              StartsWith(Fixture("no_such.bin") + ": "));
}

}  // namespace
}  // namespace garden

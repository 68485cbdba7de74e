#include "common/formats/pickle_machine.h"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/base/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace garden::pickle {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::string_literals;

// data.pkl of real torch.save archives (Debian's PyTorch 1.13), extracted
// with zipfile; each comment is the Python that wrote it.

// clang-format off
// OrderedDict([
//     ('a.weight', torch.arange(6, dtype=torch.float16).reshape(2, 3)),
//     ('a.bias', torch.zeros(3, dtype=torch.uint8))])
constexpr char kBasicPickle[] =
    "\x80\x02" "ccollections\nOrderedDict\nq\x00)Rq\x01(X\x08\x00\x00\x00" "a"
    ".weightq\x02" "ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00"
    "\x00storageq\x04" "ctorch\nHalfStorage\nq\x05X\x01\x00\x00\x00" "0q"
    "\x06X\x03\x00\x00\x00" "cpuq\x07K\x06tq\x08QK\x00K\x02K\x03\x86q\x09K"
    "\x03K\x01\x86q\n\x89h\x00)Rq\x0btq\x0cRq\x0dX\x06\x00\x00\x00" "a.bias"
    "q\x0eh\x03((h\x04" "ctorch\nByteStorage\nq\x0fX\x01\x00\x00\x00" "1q"
    "\x10h\x07K\x03tq\x11QK\x00K\x03\x85q\x12K\x01\x85q\x13\x89h\x00)Rq\x14"
    "tq\x15Rq\x16u.";

// base = torch.arange(10, dtype=torch.float32)
// OrderedDict(x=base[2:5], y=base[5:])
constexpr char kSharedPickle[] =
    "\x80\x02" "ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00xq"
    "\x02" "ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00stor"
    "ageq\x04" "ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x00" "0q\x06X\x03"
    "\x00\x00\x00" "cpuq\x07K\ntq\x08QK\x02K\x03\x85q\x09K\x01\x85q\n\x89h"
    "\x00)Rq\x0btq\x0cRq\x0dX\x01\x00\x00\x00yq\x0eh\x03((h\x04h\x05h\x06h"
    "\x07K\ntq\x0fQK\x05K\x05\x85q\x10K\x01\x85q\x11\x89h\x00)Rq\x12tq\x13R"
    "q\x14u.";

// torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
//     .state_dict()  (with its _metadata, set by BUILD)
constexpr char kModulePickle[] =
    "\x80\x02" "ccollections\nOrderedDict\nq\x00)Rq\x01(X\x08\x00\x00\x00" "0"
    ".weightq\x02" "ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00"
    "\x00storageq\x04" "ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x00" "0q"
    "\x06X\x03\x00\x00\x00" "cpuq\x07K\x06tq\x08QK\x00K\x02K\x03\x86q\x09K"
    "\x03K\x01\x86q\n\x89h\x00)Rq\x0btq\x0cRq\x0dX\x06\x00\x00\x00" "0.bias"
    "q\x0eh\x03((h\x04h\x05X\x01\x00\x00\x00" "1q\x0fh\x07K\x02tq\x10QK\x00"
    "K\x02\x85q\x11K\x01\x85q\x12\x89h\x00)Rq\x13tq\x14Rq\x15X\x08\x00\x00"
    "\x00" "1.weightq\x16h\x03((h\x04h\x05X\x01\x00\x00\x00" "2q\x17h\x07K"
    "\x02tq\x18QK\x00K\x02\x85q\x19K\x01\x85q\x1a\x89h\x00)Rq\x1btq\x1cRq"
    "\x1dX\x06\x00\x00\x00" "1.biasq\x1eh\x03((h\x04h\x05X\x01\x00\x00\x00" "3"
    "q\x1fh\x07K\x02tq QK\x00K\x02\x85q!K\x01\x85q\x22\x89h\x00)Rq#tq$Rq%u}"
    "q&X\x09\x00\x00\x00_metadataq'h\x00)Rq((X\x00\x00\x00\x00q)}q*X\x07"
    "\x00\x00\x00versionq+K\x01sX\x01\x00\x00\x00" "0q,}q-h+K\x01sX\x01\x00"
    "\x00\x00" "1q.}q/h+K\x01susb.";

// OrderedDict(p=torch.nn.Parameter(torch.ones(2)))
constexpr char kParameterPickle[] =
    "\x80\x02" "ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00pq"
    "\x02" "ctorch._utils\n_rebuild_parameter\nq\x03" "ctorch._utils\n_rebu"
    "ild_tensor_v2\nq\x04((X\x07\x00\x00\x00storageq\x05" "ctorch\nFloatSto"
    "rage\nq\x06X\x01\x00\x00\x00" "0q\x07X\x03\x00\x00\x00" "cpuq\x08K\x02"
    "tq\x09QK\x00K\x02\x85q\nK\x01\x85q\x0b\x89h\x00)Rq\x0ctq\x0dRq\x0e\x88"
    "h\x00)Rq\x0f\x87q\x10Rq\x11s.";
// clang-format on

template <size_t N>
std::string_view Bytes(const char (&literal)[N]) {
  return std::string_view(literal, N - 1);  // the pickles hold NUL bytes
}

// Pieces for hand-written pickles.
std::string Le32(uint32_t v) {
  std::string out;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}
std::string Str(std::string_view s) {
  return "X" + Le32(static_cast<uint32_t>(s.size())) + std::string(s);
}
std::string Glob(std::string_view module, std::string_view name) {
  return "c" + std::string(module) + "\n" + std::string(name) + "\n";
}
const std::string kProto2 = "\x80\x02";
const std::string kZero = "K\x00"s;  // BININT1 0
const std::string kNewOrderedDict = Glob("collections", "OrderedDict") + ")R";
// A persistent id of a 4-element storage "0" and its BINPERSID.
std::string StorageId(std::string_view cls = "FloatStorage",
                      std::string_view numel = "K\x04") {
  return "(" + Str("storage") + Glob("torch", cls) + Str("0") + Str("cpu") +
         std::string(numel) + "tQ";
}
// _rebuild_tensor_v2 applied to the arguments pushed by `args`.
std::string Rebuild(std::string_view args) {
  return Glob("torch._utils", "_rebuild_tensor_v2") + "(" + std::string(args) +
         "tR";
}
// _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()).
std::string TensorArgs(std::string_view offset, std::string_view size,
                       std::string_view stride) {
  return StorageId() + std::string(offset) + std::string(size) +
         std::string(stride) + "\x89" + kNewOrderedDict;
}
// OrderedDict with one item.
std::string StateDict(std::string_view key, std::string_view value) {
  return kProto2 + kNewOrderedDict + Str(key) + std::string(value) + "s.";
}

const Dict& AsDict(const ValuePtr& v) { return std::get<Dict>(v->v); }
const Tensor& AsTensor(const ValuePtr& v) { return std::get<Tensor>(v->v); }

std::vector<std::string> Keys(const Dict& dict) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : dict.items) {
    keys.push_back(std::get<std::string>(key->v));
  }
  return keys;
}

absl::Status UnpickleStatus(std::string_view bytes,
                            const Options& options = Options()) {
  return Unpickle(bytes, "t.pkl", options).status();
}

void ExpectError(std::string_view bytes, absl::StatusCode code,
                 std::string_view substring,
                 const Options& options = Options()) {
  const absl::Status status = UnpickleStatus(bytes, options);
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(substring)));
  EXPECT_THAT(std::string(status.message()), StartsWith("t.pkl: offset "));
  EXPECT_TRUE(IsValidUtf8(std::string(status.message()))) << status;
}

// --- Real torch.save pickles -----------------------------------------------

TEST(PickleMachineTest, RealStateDictOfTwoTensors) {
  auto result = Unpickle(Bytes(kBasicPickle), "basic.pt/data.pkl");
  ASSERT_TRUE(result.ok()) << result.status();
  const Dict& dict = AsDict(*result);
  EXPECT_THAT(Keys(dict), ElementsAre("a.weight", "a.bias"));

  const Tensor& weight = AsTensor(dict.items[0].second);
  EXPECT_EQ(weight.storage->dtype, DType::kF16);
  EXPECT_EQ(weight.storage->key, "0");
  EXPECT_EQ(weight.storage->location, "cpu");
  EXPECT_EQ(weight.storage->numel, 6);
  EXPECT_EQ(weight.storage_offset, 0);
  EXPECT_THAT(weight.size, ElementsAre(2, 3));
  EXPECT_THAT(weight.stride, ElementsAre(3, 1));

  const Tensor& bias = AsTensor(dict.items[1].second);
  EXPECT_EQ(bias.storage->dtype, DType::kU8);
  EXPECT_EQ(bias.storage->key, "1");
  EXPECT_EQ(bias.storage->location, "cpu");
  EXPECT_EQ(bias.storage->numel, 3);
  EXPECT_EQ(bias.storage_offset, 0);
  EXPECT_THAT(bias.size, ElementsAre(3));
  EXPECT_THAT(bias.stride, ElementsAre(1));
  // dict -> tensor value is 2 deep; the tuples inside were dropped.
  EXPECT_EQ((*result)->depth, 2);
}

TEST(PickleMachineTest, RealViewsShareOneStorage) {
  auto result = Unpickle(Bytes(kSharedPickle), "shared");
  ASSERT_TRUE(result.ok()) << result.status();
  const Dict& dict = AsDict(*result);
  EXPECT_THAT(Keys(dict), ElementsAre("x", "y"));
  const Tensor& x = AsTensor(dict.items[0].second);
  const Tensor& y = AsTensor(dict.items[1].second);
  EXPECT_EQ(x.storage.get(), y.storage.get());
  EXPECT_EQ(x.storage->dtype, DType::kF32);
  EXPECT_EQ(x.storage->key, "0");
  EXPECT_EQ(x.storage->numel, 10);
  EXPECT_EQ(x.storage_offset, 2);
  EXPECT_THAT(x.size, ElementsAre(3));
  EXPECT_THAT(x.stride, ElementsAre(1));
  EXPECT_EQ(y.storage_offset, 5);
  EXPECT_THAT(y.size, ElementsAre(5));
  EXPECT_THAT(y.stride, ElementsAre(1));
}

TEST(PickleMachineTest, RealModuleStateDictWithMetadata) {
  auto result = Unpickle(Bytes(kModulePickle), "module");
  ASSERT_TRUE(result.ok()) << result.status();
  const Dict& dict = AsDict(*result);
  EXPECT_THAT(Keys(dict),
              ElementsAre("0.weight", "0.bias", "1.weight", "1.bias"));
  const std::vector<std::string> keys = {"0", "1", "2", "3"};
  const std::vector<std::vector<int64_t>> sizes = {{2, 3}, {2}, {2}, {2}};
  const std::vector<std::vector<int64_t>> strides = {{3, 1}, {1}, {1}, {1}};
  for (size_t i = 0; i < dict.items.size(); ++i) {
    const Tensor& t = AsTensor(dict.items[i].second);
    EXPECT_EQ(t.storage->dtype, DType::kF32);
    EXPECT_EQ(t.storage->key, keys[i]);
    EXPECT_EQ(t.storage->numel, i == 0 ? 6 : 2);
    EXPECT_EQ(t.storage_offset, 0);
    EXPECT_EQ(t.size, sizes[i]);
    EXPECT_EQ(t.stride, strides[i]);
  }
}

TEST(PickleMachineTest, RealParameterIsItsTensor) {
  auto result = Unpickle(Bytes(kParameterPickle), "param");
  ASSERT_TRUE(result.ok()) << result.status();
  const Dict& dict = AsDict(*result);
  EXPECT_THAT(Keys(dict), ElementsAre("p"));
  const Tensor& p = AsTensor(dict.items[0].second);
  EXPECT_EQ(p.storage->dtype, DType::kF32);
  EXPECT_EQ(p.storage->numel, 2);
  EXPECT_THAT(p.size, ElementsAre(2));
  EXPECT_THAT(p.stride, ElementsAre(1));
}

TEST(PickleMachineTest, TensorKeepsItsStorageAlive) {
  Tensor tensor;
  {
    auto result = Unpickle(Bytes(kBasicPickle), "basic");
    ASSERT_TRUE(result.ok()) << result.status();
    tensor = AsTensor(AsDict(*result).items[1].second);
  }
  EXPECT_EQ(tensor.storage->key, "1");
  EXPECT_EQ(tensor.storage->dtype, DType::kU8);
}

TEST(PickleMachineTest, RealPicklesAreWhole) {
  // The sizes zipfile reported: the literals lost no NUL or escape.
  EXPECT_EQ(Bytes(kBasicPickle).size(), 257u);
  EXPECT_EQ(Bytes(kSharedPickle).size(), 217u);
  EXPECT_EQ(Bytes(kModulePickle).size(), 453u);
  EXPECT_EQ(Bytes(kParameterPickle).size(), 213u);
}

// Each byte of a real pickle replaced by opcodes and extreme values: every
// outcome is a value or a DATA_LOSS / FAILED_PRECONDITION with a valid
// UTF-8 message (and, under sanitizers, no memory error).
TEST(PickleMachineTest, MutatedRealPicklesFailCleanly) {
  const std::string original(Bytes(kModulePickle));
  const std::string replacements =
      "\x00\x01\x7f\x80\xff()]}abehjqrRstuQ\x85\x86\x8a."s;
  for (size_t i = 0; i < original.size(); ++i) {
    for (char c : replacements) {
      std::string mutated = original;
      mutated[i] = c;
      const absl::Status status = Unpickle(mutated, "m").status();
      if (status.ok()) continue;
      EXPECT_TRUE(status.code() == absl::StatusCode::kDataLoss ||
                  status.code() == absl::StatusCode::kFailedPrecondition)
          << i << ": " << status;
      EXPECT_TRUE(IsValidUtf8(std::string(status.message()))) << status;
    }
  }
}

TEST(PickleMachineTest, EveryTruncationOfARealPickleIsDataLoss) {
  const std::string_view bytes = Bytes(kModulePickle);
  for (size_t n = 0; n < bytes.size(); ++n) {
    const absl::Status status = UnpickleStatus(bytes.substr(0, n));
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss)
        << n << ": " << status;
  }
}

// --- Globals ---------------------------------------------------------------

TEST(PickleMachineTest, RefusesDangerousGlobalsWhereTheyStand) {
  const std::string payload = "(S'touch /tmp/x'\ntR.";
  for (const auto& [module, name] :
       std::vector<std::pair<std::string, std::string>>{
           {"os", "system"},
           {"builtins", "eval"},
           {"subprocess", "Popen"},
           {"posix", "system"},
           {"torch._utils", "_rebuild_tensor"},
           {"torch", "load"}}) {
    SCOPED_TRACE(module + "." + name);
    const absl::Status status =
        Unpickle(Glob(module, name) + payload, "evil.pkl").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(status.message(), "evil.pkl: offset 0: global \"" + module + "." +
                                    name + "\" is not allowed in a state dict");
  }
}

TEST(PickleMachineTest, RefusesAGlobalInsideAStateDictAtItsOffset) {
  const std::string prefix = kProto2 + kNewOrderedDict + Str("w");
  const std::string bytes = prefix + Glob("builtins", "exec") + "(tR" + "s.";
  ExpectError(
      bytes, absl::StatusCode::kFailedPrecondition,
      "offset " + std::to_string(prefix.size()) + ": global \"builtins.exec\"");
}

TEST(PickleMachineTest, EscapesGlobalNamesInMessages) {
  ExpectError("c\xff\x01\nx\n.", absl::StatusCode::kFailedPrecondition,
              "global \"\\xff\\x01.x\"");
}

TEST(PickleMachineTest, ReduceOfStorageClassOrNonGlobalIsRefused) {
  ExpectError(kProto2 + Glob("torch", "FloatStorage") + ")R.",
              absl::StatusCode::kFailedPrecondition,
              "REDUCE of torch.FloatStorage");
  ExpectError(kProto2 + "))R.", absl::StatusCode::kFailedPrecondition,
              "REDUCE of a tuple");
  ExpectError(kProto2 + Glob("collections", "OrderedDict") + "NR.",
              absl::StatusCode::kFailedPrecondition, "with a None");
}

TEST(PickleMachineTest, OrderedDictWithArgumentsIsRefused) {
  ExpectError(kProto2 + Glob("collections", "OrderedDict") + "(]tR.",
              absl::StatusCode::kFailedPrecondition,
              "offset 30: REDUCE of collections.OrderedDict with arguments");
}

// --- Opcodes and protocols -------------------------------------------------

TEST(PickleMachineTest, RefusesOpcodesOutsideTheSubset) {
  struct Case {
    std::string bytes, message;
  };
  for (const Case& c : std::vector<Case>{
           {kProto2 + Str("os") + Str("system") + "\x93.",
            "offset 20: opcode 0x93 (STACK_GLOBAL) is not allowed"},
           {"ios\nsystem\n.", "offset 0: opcode 0x69 'i' (INST) is not"},
           {kProto2 + "\x95\x01\x00\x00\x00\x00\x00\x00\x00N."s,
            "offset 2: opcode 0x95 (FRAME)"},
           {"(o.", "offset 1: opcode 0x6f 'o' (OBJ)"},
           {"B\x01\x00\x00\x00x."s, "opcode 0x42 'B' (BINBYTES)"},
           {"S'x'\n.", "opcode 0x53 'S' (STRING)"},
           {"\xff.", "opcode 0xff (not a pickle opcode) is not allowed"}}) {
    SCOPED_TRACE(c.message);
    ExpectError(c.bytes, absl::StatusCode::kFailedPrecondition, c.message);
  }
}

TEST(PickleMachineTest, AcceptsProtocolsTwoAndThreeOnly) {
  EXPECT_TRUE(UnpickleStatus("\x80\x02N.").ok());
  EXPECT_TRUE(UnpickleStatus("\x80\x03N.").ok());
  ExpectError("\x80\x04\x95", absl::StatusCode::kFailedPrecondition,
              "offset 0: pickle protocol 4 is not supported");
  ExpectError("\x80\x00N."s, absl::StatusCode::kFailedPrecondition,
              "protocol 0");
  ExpectError("\x80", absl::StatusCode::kDataLoss, "PROTO: truncated");
}

TEST(PickleMachineTest, Scalars) {
  const std::string bytes = kProto2 + "(NJ\xfe\xff\xff\xffK\xffM\xff\xff" +
                            "G\x3f\xf8\x00\x00\x00\x00\x00\x00\x88\x89U\x03"
                            "abc"s +
                            "X\x02\x00\x00\x00\xc3\xa9t."s;
  auto result = Unpickle(bytes, "scalars");
  ASSERT_TRUE(result.ok()) << result.status();
  const auto& items = std::get<Tuple>((*result)->v).items;
  ASSERT_EQ(items.size(), 9u);
  EXPECT_TRUE(std::holds_alternative<None>(items[0]->v));
  EXPECT_EQ(std::get<int64_t>(items[1]->v), -2);
  EXPECT_EQ(std::get<int64_t>(items[2]->v), 255);
  EXPECT_EQ(std::get<int64_t>(items[3]->v), 65535);
  EXPECT_EQ(std::get<double>(items[4]->v), 1.5);
  EXPECT_EQ(std::get<bool>(items[5]->v), true);
  EXPECT_EQ(std::get<bool>(items[6]->v), false);
  EXPECT_EQ(std::get<std::string>(items[7]->v), "abc");
  EXPECT_EQ(std::get<std::string>(items[8]->v), "\xc3\xa9");
  EXPECT_EQ((*result)->depth, 2);
}

TEST(PickleMachineTest, ShortBinString) {
  auto result = Unpickle(
      "U\x03"
      "abc.",
      "s");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(std::get<std::string>((*result)->v), "abc");
}

TEST(PickleMachineTest, Long1) {
  const auto value = [](std::string bytes) -> absl::StatusOr<int64_t> {
    auto result = Unpickle(bytes + ".", "long");
    if (!result.ok()) return result.status();
    return std::get<int64_t>((*result)->v);
  };
  EXPECT_EQ(*value("\x8a\x00"s), 0);
  EXPECT_EQ(*value("\x8a\x01\xff"), -1);
  EXPECT_EQ(*value("\x8a\x03\x00\x80\x00"s), 32768);  // as Python writes them
  EXPECT_EQ(*value("\x8a\x02\x00\x80"s), -32768);
  EXPECT_EQ(*value("\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80"s),
            std::numeric_limits<int64_t>::min());
  // Python writes 2**63 - 1 in 8 bytes; a sign-extending ninth byte also fits.
  EXPECT_EQ(*value("\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f"),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(*value("\x8a\x09\xff\xff\xff\xff\xff\xff\xff\x7f\x00"s),
            std::numeric_limits<int64_t>::max());
  // 2**63 and -2**63 - 1.
  EXPECT_EQ(
      value("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00"s).status().code(),
      absl::StatusCode::kFailedPrecondition);
  ExpectError("\x8a\x09\xff\xff\xff\xff\xff\xff\xff\x7f\xff."s,
              absl::StatusCode::kFailedPrecondition,
              "offset 0: LONG1: a 9-byte integer does not fit 64 bits");
  ExpectError("\x8a\x04\x01\x02", absl::StatusCode::kDataLoss,
              "LONG1: truncated argument");
}

// --- Damage ------------------------------------------------------------------

TEST(PickleMachineTest, TruncatedArguments) {
  ExpectError("J\x01\x02", absl::StatusCode::kDataLoss,
              "offset 0: BININT: truncated argument (4 bytes needed, 2 left)");
  ExpectError("NG\x01", absl::StatusCode::kDataLoss,
              "offset 1: BINFLOAT: truncated");
  // The length is not believed before the bytes are there.
  ExpectError(
      "X\xff\xff\xff\xff"
      "ab",
      absl::StatusCode::kDataLoss,
      "BINUNICODE: truncated argument (4294967295 bytes needed, 2 left)");
  ExpectError("X\x01\x00"s, absl::StatusCode::kDataLoss,
              "BINUNICODE: truncated argument (4 bytes needed, 2 left)");
  ExpectError("ccollections\nOrderedDict", absl::StatusCode::kDataLoss,
              "GLOBAL: truncated argument");
}

TEST(PickleMachineTest, InvalidUtf8IsDataLoss) {
  ExpectError("X\x02\x00\x00\x00\xc3\x28."s, absl::StatusCode::kDataLoss,
              "offset 0: BINUNICODE: string ⟦\\xc3(⟧ is not valid UTF-8");
  ExpectError("U\x01\xff.", absl::StatusCode::kDataLoss,
              "SHORT_BINSTRING: string ⟦\\xff⟧ is not valid UTF-8");
}

TEST(PickleMachineTest, StackUnderflowAndMarks) {
  ExpectError("R.", absl::StatusCode::kDataLoss, "offset 0: stack underflow");
  // Pops never reach below the innermost MARK.
  ExpectError(kNewOrderedDict + "(NR.", absl::StatusCode::kDataLoss,
              "stack underflow (above the last MARK)");
  ExpectError("N\x86.", absl::StatusCode::kDataLoss,
              "offset 1: stack underflow (2 values needed, 1 there)");
  ExpectError("qx", absl::StatusCode::kDataLoss, "stack underflow");
  ExpectError("Nt.", absl::StatusCode::kDataLoss, "offset 1: no MARK to end");
  ExpectError("(N.", absl::StatusCode::kDataLoss,
              "offset 2: STOP with a MARK still open");
}

TEST(PickleMachineTest, StopNeedsExactlyOneValue) {
  ExpectError("NN.", absl::StatusCode::kDataLoss,
              "offset 2: STOP with 2 values on the stack, not 1");
  ExpectError(".", absl::StatusCode::kDataLoss, "STOP with 0 values");
  ExpectError("N", absl::StatusCode::kDataLoss,
              "offset 1: the pickle ends without STOP");
  ExpectError("", absl::StatusCode::kDataLoss,
              "offset 0: the pickle ends without STOP");
  // Bytes after STOP are not read.
  auto result = Unpickle("K\x07.garbage\xff", "tail");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(std::get<int64_t>((*result)->v), 7);
}

TEST(PickleMachineTest, Memo) {
  ExpectError("Nq\x00h\x07."s, absl::StatusCode::kDataLoss,
              "offset 3: memo index 7 was never stored");
  ExpectError("j\x78\x56\x34\x12.", absl::StatusCode::kDataLoss,
              "memo index 305419896 was never stored");
  // The largest index is a key, not an allocation.
  auto result = Unpickle(
      "K\x05r\xff\xff\xff\xff"
      "j\xff\xff\xff\xff\x86.",
      "memo");
  ASSERT_TRUE(result.ok()) << result.status();
  const auto& items = std::get<Tuple>((*result)->v).items;
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].get(), items[1].get());
  EXPECT_EQ(std::get<int64_t>(items[1]->v), 5);
}

TEST(PickleMachineTest, NestingDeeperThanTheLimitIsDataLoss) {
  // 100 lists, each appended to the one below it.
  const std::string lists = std::string(100, ']') + std::string(99, 'a') + ".";
  ExpectError(lists, absl::StatusCode::kDataLoss,
              "nesting depth 65 exceeds the limit 64");
  Options deep;
  deep.max_depth = 100;
  auto result = Unpickle(lists, "deep", deep);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ((*result)->depth, 100);

  // 100 nested one-tuples.
  ExpectError(")" + std::string(100, '\x85') + ".", absl::StatusCode::kDataLoss,
              "offset 64: nesting depth 65 exceeds the limit 64");
  // 1000 MARKs.
  ExpectError(std::string(1000, '(') + ".", absl::StatusCode::kDataLoss,
              "offset 64: more than 64 nested MARKs");
}

TEST(PickleMachineTest, TooManyValuesIsDataLoss) {
  Options small;
  small.max_values = 10;
  EXPECT_TRUE(UnpickleStatus("(" + std::string(9, 'N') + "t.", small).ok());
  ExpectError("(" + std::string(20, 'N') + "t.", absl::StatusCode::kDataLoss,
              "offset 11: more than 10 values on the stack and in the memo",
              small);
  ExpectError("(NNNNNNNNNNq\x01.", absl::StatusCode::kDataLoss,
              "offset 11: more than 10 values", small);
}

TEST(PickleMachineTest, RepeatedKeyKeepsFirstPlaceAndLastValue) {
  auto result =
      Unpickle("}(" + Str("a") + "K\x01" + Str("b") + "K\x02" + Str("a") +
                   "K\x03u" + "K\x07K\x08sJ\x07\x00\x00\x00K\x09s."s,
               "dict");
  ASSERT_TRUE(result.ok()) << result.status();
  const Dict& dict = AsDict(*result);
  ASSERT_EQ(dict.items.size(), 3u);
  EXPECT_EQ(std::get<std::string>(dict.items[0].first->v), "a");
  EXPECT_EQ(std::get<int64_t>(dict.items[0].second->v), 3);
  EXPECT_EQ(std::get<std::string>(dict.items[1].first->v), "b");
  EXPECT_EQ(std::get<int64_t>(dict.items[1].second->v), 2);
  // K 7 and J 7 are one key.
  EXPECT_EQ(std::get<int64_t>(dict.items[2].first->v), 7);
  EXPECT_EQ(std::get<int64_t>(dict.items[2].second->v), 9);
}

TEST(PickleMachineTest, ListsAppend) {
  auto result = Unpickle(
      "]K\x01"
      "a(K\x02K\x03"
      "e.",
      "list");
  ASSERT_TRUE(result.ok()) << result.status();
  const auto& items = std::get<List>((*result)->v).items;
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(std::get<int64_t>(items[2]->v), 3);
  EXPECT_EQ((*result)->depth, 2);
}

TEST(PickleMachineTest, ContainersCannotContainThemselves) {
  ExpectError(
      "]q\x00h\x00"
      "a."s,
      absl::StatusCode::kDataLoss,
      "offset 5: APPEND to a list already nested in a value");
  ExpectError("}q\x00K\x01h\x00s."s, absl::StatusCode::kDataLoss,
              "SETITEM on a dict already nested in a value");
  // Nor be changed once nested elsewhere.
  ExpectError(
      "]q\x00\x85h\x00K\x01"
      "a."s,
      absl::StatusCode::kDataLoss, "APPEND to a list already nested");
}

TEST(PickleMachineTest, WrongTargetsAreDataLoss) {
  ExpectError("]K\x01K\x02s.", absl::StatusCode::kDataLoss,
              "offset 5: SETITEM on a list");
  ExpectError(
      "}K\x01"
      "a.",
      absl::StatusCode::kDataLoss, "APPEND to a dict");
  ExpectError("}(K\x01u.", absl::StatusCode::kDataLoss,
              "SETITEMS with an odd number of values (1)");
  ExpectError("]}b.", absl::StatusCode::kDataLoss, "offset 2: BUILD on a list");
  ExpectError(
      "}K\x01"
      "b.",
      absl::StatusCode::kDataLoss, "BUILD with an int state");
  EXPECT_TRUE(UnpickleStatus("}Nb.").ok());
}

// --- Persistent ids and rebuilds ---------------------------------------------

TEST(PickleMachineTest, PersistentIdMustBeAStorage) {
  ExpectError(Str("x") + "Q.", absl::StatusCode::kFailedPrecondition,
              "offset 6: persistent id is not a storage (a str)");
  ExpectError("(" + Str("storage") + Glob("collections", "OrderedDict") +
                  Str("0") + Str("cpu") + "K\x01tQ.",
              absl::StatusCode::kFailedPrecondition,
              "persistent id is not a storage (a tuple)");
  ExpectError("(" + Str("module") + Glob("torch", "FloatStorage") + Str("0") +
                  Str("cpu") + "K\x01tQ.",
              absl::StatusCode::kFailedPrecondition, "not a storage");
  ExpectError(StorageId("FloatStorage", "J\xff\xff\xff\xff") + ".",
              absl::StatusCode::kDataLoss, "storage \"0\" has -1 elements");
  auto storage = Unpickle(StorageId("BFloat16Storage") + ".", "pid");
  ASSERT_TRUE(storage.ok()) << storage.status();
  EXPECT_EQ(std::get<Storage>((*storage)->v).dtype, DType::kBF16);
  EXPECT_EQ(std::get<Storage>((*storage)->v).numel, 4);
}

TEST(PickleMachineTest, OneKeyIsOneStorage) {
  ExpectError("(" + StorageId("FloatStorage") + StorageId("HalfStorage") + "t.",
              absl::StatusCode::kDataLoss,
              "storage \"0\" is F16[4] on \"cpu\" but was F32[4] on \"cpu\"");
}

TEST(PickleMachineTest, RebuildTensorWithMetadata) {
  for (const std::string metadata : {"N", "}"}) {
    auto result = Unpickle(
        StateDict("w", Rebuild(TensorArgs("K\x01", "K\x03\x85", "K\x01\x85") +
                               metadata)),
        "meta");
    ASSERT_TRUE(result.ok()) << result.status();
    const Tensor& t = AsTensor(AsDict(*result).items[0].second);
    EXPECT_EQ(t.storage_offset, 1);
    EXPECT_THAT(t.size, ElementsAre(3));
  }
  // A scalar tensor: empty size and stride.
  auto scalar =
      Unpickle(StateDict("s", Rebuild(TensorArgs(kZero, ")", ")"))), "scalar");
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_TRUE(AsTensor(AsDict(*scalar).items[0].second).size.empty());
}

TEST(PickleMachineTest, RebuildTensorValidatesItsArguments) {
  const auto tensor = [](std::string_view offset, std::string_view size,
                         std::string_view stride) {
    return StateDict("w", Rebuild(TensorArgs(offset, size, stride)));
  };
  ExpectError(tensor(kZero, "K\x02J\xfd\xff\xff\xff\x86", "K\x01K\x01\x86"),
              absl::StatusCode::kDataLoss,
              "_rebuild_tensor_v2: size (2, -3) has a negative entry -3");
  ExpectError(tensor(kZero, "K\x02\x85", "J\xff\xff\xff\xff\x85"),
              absl::StatusCode::kDataLoss, "stride (-1) has a negative entry");
  ExpectError(tensor(kZero, "K\x02K\x02\x86", "K\x01\x85"),
              absl::StatusCode::kDataLoss,
              "size (2, 2) and stride (1) differ in rank");
  ExpectError(tensor("J\xff\xff\xff\xff", "K\x02\x85", "K\x01\x85"),
              absl::StatusCode::kDataLoss, "storage offset -1 is negative");
  ExpectError(tensor(kZero, "K\x02", "K\x01\x85"), absl::StatusCode::kDataLoss,
              "size is an int, not a tuple");
  ExpectError(tensor(kZero, "(" + Str("2") + "t", "K\x01\x85"),
              absl::StatusCode::kDataLoss, "size holds a str");
  std::string rank17 = "(";
  for (int i = 0; i < 17; ++i) rank17 += "K\x01";
  ExpectError(tensor(kZero, rank17 + "t", ")"), absl::StatusCode::kDataLoss,
              "size has rank 17, more than 16");
  // Five arguments, and a non-storage first argument.
  ExpectError(
      StateDict("w", Rebuild(StorageId() + kZero + "K\x02\x85K\x01\x85\x89")),
      absl::StatusCode::kDataLoss,
      "_rebuild_tensor_v2 with 5 arguments, not 6 or 7");
  ExpectError(StateDict("w", Rebuild("N" + kZero + "K\x02\x85K\x01\x85\x89}")),
              absl::StatusCode::kDataLoss,
              "_rebuild_tensor_v2 with arguments (None, int, ..., bool, dict)");
  ExpectError(StateDict("w", Rebuild(StorageId() + kZero +
                                     "))\x89}K\x01}(K\x01K\x02u")),
              absl::StatusCode::kDataLoss, "with 8 arguments");
  ExpectError(
      StateDict("w", Rebuild(StorageId() + kZero + "))\x89}(K\x01K\x02u")),
      absl::StatusCode::kDataLoss, "with backward hooks");
}

TEST(PickleMachineTest, RebuildParameterValidatesItsArguments) {
  const std::string param = Glob("torch._utils", "_rebuild_parameter");
  ExpectError(StateDict("p", param + "K\x01\x88}\x87R"),
              absl::StatusCode::kDataLoss,
              "_rebuild_parameter with arguments other than");
  ExpectError(StateDict("p", param + Rebuild(TensorArgs(kZero, ")", ")")) +
                                 "\x88\x86R"),
              absl::StatusCode::kDataLoss, "_rebuild_parameter with arguments");
}

TEST(PickleMachineTest, TypeNames) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"N.", "None"},
      {"\x88.", "bool"},
      {"K\x01.", "int"},
      {"G\x3f\xf0\x00\x00\x00\x00\x00\x00."s, "float"},
      {Str("s") + ".", "str"},
      {").", "tuple"},
      {"].", "list"},
      {"}.", "dict"},
      {Glob("torch", "IntStorage") + ".", "global"},
      {StorageId() + ".", "storage"},
      {Rebuild(TensorArgs(kZero, ")", ")")) + ".", "Tensor"}};
  for (const auto& [bytes, name] : cases) {
    auto result = Unpickle(bytes, "type");
    ASSERT_TRUE(result.ok()) << name << ": " << result.status();
    EXPECT_EQ(TypeName(**result), name);
  }
}

}  // namespace
}  // namespace garden::pickle

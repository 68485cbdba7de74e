#include "common/formats/pickle_machine.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/base/file_content.h"
#include "common/base/status.h"
#include "common/base/utf8.h"

namespace garden::pickle {
namespace {

// The opcodes the machine runs.
enum Op : unsigned char {
  kProto = 0x80,
  kStop = '.',
  kGlobal = 'c',
  kReduce = 'R',
  kBuild = 'b',
  kMark = '(',
  kTuple = 't',
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kEmptyTuple = ')',
  kEmptyList = ']',
  kAppend = 'a',
  kAppends = 'e',
  kEmptyDict = '}',
  kSetItem = 's',
  kSetItems = 'u',
  kNone = 'N',
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kLong1 = 0x8a,
  kBinFloat = 'G',
  kBinUnicode = 'X',
  kShortBinString = 'U',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kBinPersId = 'Q',
};

// The mnemonic of every pickle opcode (protocols 0 to 5), for messages.
struct OpcodeMnemonic {
  unsigned char op;
  std::string_view name;
};
// clang-format off
constexpr OpcodeMnemonic kMnemonics[] = {
    {'(', "MARK"}, {'.', "STOP"}, {'0', "POP"}, {'1', "POP_MARK"}, {'2', "DUP"},
    {'F', "FLOAT"}, {'I', "INT"}, {'J', "BININT"}, {'K', "BININT1"},
    {'L', "LONG"}, {'M', "BININT2"}, {'N', "NONE"}, {'P', "PERSID"},
    {'Q', "BINPERSID"}, {'R', "REDUCE"}, {'S', "STRING"}, {'T', "BINSTRING"},
    {'U', "SHORT_BINSTRING"}, {'V', "UNICODE"}, {'X', "BINUNICODE"},
    {'a', "APPEND"}, {'b', "BUILD"}, {'c', "GLOBAL"}, {'d', "DICT"},
    {'e', "APPENDS"}, {'g', "GET"}, {'h', "BINGET"}, {'i', "INST"},
    {'j', "LONG_BINGET"}, {'l', "LIST"}, {']', "EMPTY_LIST"}, {'o', "OBJ"},
    {'p', "PUT"}, {'q', "BINPUT"}, {'r', "LONG_BINPUT"}, {'s', "SETITEM"},
    {'t', "TUPLE"}, {')', "EMPTY_TUPLE"}, {'u', "SETITEMS"}, {'G', "BINFLOAT"},
    {'B', "BINBYTES"}, {'C', "SHORT_BINBYTES"}, {0x80, "PROTO"},
    {0x81, "NEWOBJ"}, {0x82, "EXT1"}, {0x83, "EXT2"}, {0x84, "EXT4"},
    {0x85, "TUPLE1"}, {0x86, "TUPLE2"}, {0x87, "TUPLE3"}, {0x88, "NEWTRUE"},
    {0x89, "NEWFALSE"}, {0x8a, "LONG1"}, {0x8b, "LONG4"},
    {0x8c, "SHORT_BINUNICODE"}, {0x8d, "BINUNICODE8"}, {0x8e, "BINBYTES8"},
    {0x8f, "EMPTY_SET"}, {0x90, "ADDITEMS"}, {0x91, "FROZENSET"},
    {0x92, "NEWOBJ_EX"}, {0x93, "STACK_GLOBAL"}, {0x94, "MEMOIZE"},
    {0x95, "FRAME"}, {0x96, "BYTEARRAY8"}, {0x97, "NEXT_BUFFER"},
    {0x98, "READONLY_BUFFER"}};
// clang-format on

std::string_view OpcodeName(unsigned char op) {
  for (const OpcodeMnemonic& m : kMnemonics) {
    if (m.op == op) return m.name;
  }
  return "";
}

constexpr size_t kMaxRank = 16;

struct StorageClass {
  std::string_view name;
  DType dtype;
};
constexpr StorageClass kStorageClasses[] = {
    {"HalfStorage", DType::kF16},  {"BFloat16Storage", DType::kBF16},
    {"FloatStorage", DType::kF32}, {"DoubleStorage", DType::kF64},
    {"ByteStorage", DType::kU8},   {"CharStorage", DType::kI8},
    {"ShortStorage", DType::kI16}, {"IntStorage", DType::kI32},
    {"LongStorage", DType::kI64},  {"BoolStorage", DType::kBool},
};

std::optional<DType> StorageDType(const Global& global) {
  if (global.module != "torch") return std::nullopt;
  for (const StorageClass& c : kStorageClasses) {
    if (global.name == c.name) return c.dtype;
  }
  return std::nullopt;
}

bool Is(const Global& global, std::string_view module, std::string_view name) {
  return global.module == module && global.name == name;
}

bool IsAllowedGlobal(const Global& global) {
  return Is(global, "collections", "OrderedDict") ||
         Is(global, "torch._utils", "_rebuild_tensor_v2") ||
         Is(global, "torch._utils", "_rebuild_parameter") ||
         StorageDType(global).has_value();
}

std::string GlobalName(const Global& global) {
  return absl::StrCat(global.module, ".", global.name);
}

// A value under construction, shared by the stack and the memo. A container
// stays mutable only until it is nested in another value; then it is frozen.
// That is all a pickler ever needs (it finishes a container before its
// parent uses it), it rules out cycles, and it keeps a nested container's
// depth final once its parent has counted it.
struct Slot {
  Value value;
  bool frozen = false;
  // For a Dict: DictKey of each key -> its position in items.
  std::unique_ptr<std::unordered_map<std::string, size_t>> keys;
};
using SlotPtr = std::shared_ptr<Slot>;

ValuePtr Share(const SlotPtr& slot) { return ValuePtr(slot, &slot->value); }

template <typename T>
SlotPtr NewSlot(T v, int depth = 1) {
  auto slot = std::make_shared<Slot>();
  slot->value.v = std::move(v);
  slot->value.depth = depth;
  return slot;
}

template <typename T>
const T* As(const Value& value) {
  return std::get_if<T>(&value.v);
}

// Dict keys compare by value for None, bools, ints (True == 1, as in
// Python), floats and strings, by identity otherwise.
std::string DictKey(const ValuePtr& key) {
  const Value& v = *key;
  if (const auto* s = As<std::string>(v)) return absl::StrCat("s", *s);
  if (const auto* i = As<int64_t>(v)) return absl::StrCat("i", *i);
  if (const auto* b = As<bool>(v)) return absl::StrCat("i", *b ? 1 : 0);
  if (const auto* d = As<double>(v)) {
    return absl::StrCat("f", std::bit_cast<uint64_t>(*d));
  }
  if (As<None>(v) != nullptr) return "n";
  return absl::StrCat("p", reinterpret_cast<uintptr_t>(key.get()));
}

// "a dict", "an int", ... for messages.
std::string AType(const Value& value) {
  const std::string_view name = TypeName(value);
  return absl::StrCat(name == "int" ? "an " : "a ", ToAbsl(name));
}

std::string DimsString(const std::vector<int64_t>& dims) {
  return absl::StrCat("(", absl::StrJoin(dims, ", "), ")");
}

class Machine {
 public:
  Machine(std::string_view bytes, std::string_view name, const Options& options)
      : bytes_(bytes), name_(name), options_(options) {}

  absl::StatusOr<ValuePtr> Run();

 private:
  absl::Status Error(absl::StatusCode code, std::string_view what) const {
    return absl::Status(code, absl::StrCat(ToAbsl(name_), ": offset ",
                                           op_offset_, ": ", ToAbsl(what)));
  }
  absl::Status DataLoss(std::string_view what) const {
    return Error(absl::StatusCode::kDataLoss, what);
  }
  absl::Status Refuse(std::string_view what) const {
    return Error(absl::StatusCode::kFailedPrecondition, what);
  }

  absl::Status Step(unsigned char op);
  absl::StatusOr<ValuePtr> Stop();
  absl::Status RefuseOpcode(unsigned char op) const;

  // Reading arguments.
  absl::StatusOr<std::string_view> Take(size_t n);
  absl::StatusOr<uint64_t> ReadLE(size_t n);
  absl::StatusOr<std::string_view> ReadLine();

  // The stack. Pops never reach below the innermost MARK.
  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }
  absl::Status CheckRoom() const;  // for one more value
  absl::Status Push(SlotPtr slot);
  absl::StatusOr<SlotPtr> Pop();
  absl::StatusOr<SlotPtr> Top();
  absl::StatusOr<std::vector<SlotPtr>> PopN(size_t n);
  absl::StatusOr<std::vector<SlotPtr>> PopMark();
  absl::Status CheckDepth(int depth) const;

  // One method per opcode family.
  absl::Status Mark();
  absl::Status Proto();
  absl::Status Scalar(unsigned char op);
  absl::Status Long1();
  absl::Status String(unsigned char op);
  absl::Status Memo(unsigned char op);
  absl::Status GlobalOp();
  absl::Status MakeTuple(unsigned char op);
  absl::Status Append(unsigned char op);
  absl::Status SetItems(unsigned char op);
  // The container on top of the stack that `op` adds `items` to: it must hold
  // a C ("a list", "a dict") and not be nested in a value yet. Freezes the
  // items first, which also catches a container added to itself.
  template <typename C>
  absl::StatusOr<std::pair<SlotPtr, C*>> AddTarget(
      unsigned char op, const std::vector<SlotPtr>& items,
      std::string_view preposition, std::string_view a_container);
  absl::Status Build();
  absl::Status Reduce();
  absl::Status PersistentId();

  // Emulated callables.
  absl::StatusOr<SlotPtr> RebuildTensor(const Tuple& args);
  absl::StatusOr<SlotPtr> RebuildParameter(const Tuple& args);
  absl::StatusOr<std::vector<int64_t>> Dims(const Value& value,
                                            std::string_view what) const;
  absl::StatusOr<SlotPtr> MakeStorage(const Value& pid);

  std::string_view bytes_;
  std::string_view name_;
  const Options& options_;
  size_t pos_ = 0;
  size_t op_offset_ = 0;  // of the opcode being run, for messages
  std::vector<SlotPtr> stack_;
  std::vector<size_t> marks_;                   // stack sizes at each open MARK
  std::unordered_map<uint32_t, SlotPtr> memo_;  // sparse: indices are untrusted
  // Storages by key, so that tensors viewing one storage share it.
  std::unordered_map<std::string, SlotPtr> storages_;
};

absl::StatusOr<ValuePtr> Machine::Run() {
  while (pos_ < bytes_.size()) {
    op_offset_ = pos_;
    const auto op = static_cast<unsigned char>(bytes_[pos_++]);
    // Bytes after STOP are ignored, as Python does.
    if (op == kStop) return Stop();
    RETURN_IF_ERROR(Step(op));
  }
  op_offset_ = bytes_.size();
  return DataLoss("the pickle ends without STOP");
}

absl::Status Machine::Step(unsigned char op) {
  switch (op) {
    case kProto:
      return Proto();
    case kGlobal:
      return GlobalOp();
    case kReduce:
      return Reduce();
    case kBuild:
      return Build();
    case kBinPersId:
      return PersistentId();
    case kMark:
      return Mark();
    case kTuple:
    case kTuple1:
    case kTuple2:
    case kTuple3:
    case kEmptyTuple:
      return MakeTuple(op);
    case kEmptyList:
      return Push(NewSlot(List{}));
    case kEmptyDict:
      return Push(NewSlot(Dict{}));
    case kAppend:
    case kAppends:
      return Append(op);
    case kSetItem:
    case kSetItems:
      return SetItems(op);
    case kNone:
    case kNewTrue:
    case kNewFalse:
    case kBinInt:
    case kBinInt1:
    case kBinInt2:
    case kBinFloat:
      return Scalar(op);
    case kLong1:
      return Long1();
    case kBinUnicode:
    case kShortBinString:
      return String(op);
    case kBinGet:
    case kLongBinGet:
    case kBinPut:
    case kLongBinPut:
      return Memo(op);
    default:
      return RefuseOpcode(op);
  }
}

absl::Status Machine::RefuseOpcode(unsigned char op) const {
  std::string what = absl::StrFormat("opcode 0x%02x", op);
  if (op >= 0x20 && op < 0x7f) {
    absl::StrAppend(&what, " '", std::string(1, static_cast<char>(op)), "'");
  }
  const std::string_view mnemonic = OpcodeName(op);
  absl::StrAppend(&what, " (",
                  mnemonic.empty() ? "not a pickle opcode" : ToAbsl(mnemonic),
                  ") is not allowed in a state dict");
  return Refuse(what);
}

absl::StatusOr<ValuePtr> Machine::Stop() {
  if (!marks_.empty()) return DataLoss("STOP with a MARK still open");
  if (stack_.size() != 1) {
    return DataLoss(absl::StrCat("STOP with ", stack_.size(),
                                 " values on the stack, not 1"));
  }
  return Share(stack_.front());
}

absl::StatusOr<std::string_view> Machine::Take(size_t n) {
  if (n > bytes_.size() - pos_) {
    return DataLoss(absl::StrCat(
        ToAbsl(OpcodeName(static_cast<unsigned char>(bytes_[op_offset_]))),
        ": truncated argument (", n, " bytes needed, ", bytes_.size() - pos_,
        " left)"));
  }
  std::string_view out = bytes_.substr(pos_, n);
  pos_ += n;
  return out;
}

absl::StatusOr<uint64_t> Machine::ReadLE(size_t n) {
  ASSIGN_OR_RETURN(std::string_view b, Take(n));
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
  }
  return v;
}

absl::StatusOr<std::string_view> Machine::ReadLine() {
  const size_t end = bytes_.find('\n', pos_);
  if (end == std::string_view::npos) {
    return DataLoss("GLOBAL: truncated argument (no end of line)");
  }
  std::string_view line = bytes_.substr(pos_, end - pos_);
  pos_ = end + 1;
  return line;
}

absl::Status Machine::CheckRoom() const {
  if (stack_.size() + memo_.size() >= options_.max_values) {
    return DataLoss(absl::StrCat("more than ", options_.max_values,
                                 " values on the stack and in the memo"));
  }
  return absl::OkStatus();
}

absl::Status Machine::Push(SlotPtr slot) {
  RETURN_IF_ERROR(CheckRoom());
  stack_.push_back(std::move(slot));
  return absl::OkStatus();
}

absl::StatusOr<SlotPtr> Machine::Top() {
  if (stack_.size() <= Floor()) {
    return DataLoss(marks_.empty() ? "stack underflow"
                                   : "stack underflow (above the last MARK)");
  }
  return stack_.back();
}

absl::StatusOr<SlotPtr> Machine::Pop() {
  ASSIGN_OR_RETURN(SlotPtr top, Top());
  stack_.pop_back();
  return top;
}

absl::StatusOr<std::vector<SlotPtr>> Machine::PopN(size_t n) {
  if (stack_.size() - Floor() < n) {
    return DataLoss(absl::StrCat("stack underflow (", n, " values needed, ",
                                 stack_.size() - Floor(), " there)"));
  }
  std::vector<SlotPtr> items(stack_.end() - n, stack_.end());
  stack_.resize(stack_.size() - n);
  return items;
}

absl::StatusOr<std::vector<SlotPtr>> Machine::PopMark() {
  if (marks_.empty()) return DataLoss("no MARK to end");
  std::vector<SlotPtr> items(stack_.begin() + marks_.back(), stack_.end());
  stack_.resize(marks_.back());
  marks_.pop_back();
  return items;
}

absl::Status Machine::CheckDepth(int depth) const {
  if (depth > options_.max_depth) {
    return DataLoss(absl::StrCat("nesting depth ", depth, " exceeds the limit ",
                                 options_.max_depth));
  }
  return absl::OkStatus();
}

absl::Status Machine::Mark() {
  if (marks_.size() >= static_cast<size_t>(options_.max_depth)) {
    return DataLoss(
        absl::StrCat("more than ", options_.max_depth, " nested MARKs"));
  }
  marks_.push_back(stack_.size());
  return absl::OkStatus();
}

absl::Status Machine::Proto() {
  ASSIGN_OR_RETURN(uint64_t version, ReadLE(1));
  // torch.save writes protocol 2; 3 only adds bytes opcodes, refused anyway.
  if (version != 2 && version != 3) {
    return Refuse(absl::StrCat("pickle protocol ", version,
                               " is not supported (torch.save writes 2)"));
  }
  return absl::OkStatus();
}

absl::Status Machine::Scalar(unsigned char op) {
  switch (op) {
    case kNone:
      return Push(NewSlot(None{}));
    case kNewTrue:
      return Push(NewSlot(true));
    case kNewFalse:
      return Push(NewSlot(false));
    case kBinInt: {
      ASSIGN_OR_RETURN(uint64_t v, ReadLE(4));
      const auto i = static_cast<int32_t>(static_cast<uint32_t>(v));
      return Push(NewSlot(static_cast<int64_t>(i)));
    }
    case kBinInt1:
    case kBinInt2: {
      ASSIGN_OR_RETURN(uint64_t v, ReadLE(op == kBinInt1 ? 1 : 2));
      return Push(NewSlot(static_cast<int64_t>(v)));
    }
    default: {  // BINFLOAT: big-endian, unlike every other argument
      ASSIGN_OR_RETURN(std::string_view b, Take(8));
      uint64_t bits = 0;
      for (char c : b) bits = (bits << 8) | static_cast<unsigned char>(c);
      return Push(NewSlot(std::bit_cast<double>(bits)));
    }
  }
}

absl::Status Machine::Long1() {
  ASSIGN_OR_RETURN(uint64_t n, ReadLE(1));
  ASSIGN_OR_RETURN(std::string_view b, Take(n));
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(b[i]); };
  const bool negative = n > 0 && (byte(n - 1) & 0x80) != 0;
  // Bytes past the eighth may only extend the sign.
  bool fits = n <= 8 || ((byte(7) & 0x80) != 0) == negative;
  for (size_t i = 8; fits && i < n; ++i) {
    fits = byte(i) == (negative ? 0xff : 0x00);
  }
  if (!fits) {
    return Refuse(
        absl::StrCat("LONG1: a ", n, "-byte integer does not fit 64 bits"));
  }
  uint64_t v = 0;
  const size_t used = std::min<size_t>(n, 8);
  for (size_t i = 0; i < used; ++i) {
    v |= static_cast<uint64_t>(byte(i)) << (8 * i);
  }
  if (negative && used < 8) v |= ~uint64_t{0} << (8 * used);
  return Push(NewSlot(std::bit_cast<int64_t>(v)));
}

absl::Status Machine::String(unsigned char op) {
  ASSIGN_OR_RETURN(uint64_t n, ReadLE(op == kBinUnicode ? 4 : 1));
  ASSIGN_OR_RETURN(std::string_view s, Take(n));
  // SHORT_BINSTRING (Python 2 str) is decoded as UTF-8 too, as torch.load does.
  if (!IsValidUtf8(s)) {
    return DataLoss(absl::StrCat(ToAbsl(OpcodeName(op)), ": string ", ContentForMessage(s),
                                 " is not valid UTF-8"));
  }
  return Push(NewSlot(std::string(s)));
}

absl::Status Machine::Memo(unsigned char op) {
  const bool get = op == kBinGet || op == kLongBinGet;
  const bool long_index = op == kLongBinGet || op == kLongBinPut;
  ASSIGN_OR_RETURN(uint64_t v, ReadLE(long_index ? 4 : 1));
  const auto index = static_cast<uint32_t>(v);
  if (get) {
    auto it = memo_.find(index);
    if (it == memo_.end()) {
      return DataLoss(absl::StrCat("memo index ", index, " was never stored"));
    }
    return Push(it->second);
  }
  ASSIGN_OR_RETURN(SlotPtr top, Top());
  if (!memo_.contains(index)) RETURN_IF_ERROR(CheckRoom());
  memo_[index] = std::move(top);
  return absl::OkStatus();
}

absl::Status Machine::GlobalOp() {
  ASSIGN_OR_RETURN(std::string_view module, ReadLine());
  ASSIGN_OR_RETURN(std::string_view name, ReadLine());
  Global global{std::string(module), std::string(name)};
  if (!IsAllowedGlobal(global)) {
    return Refuse(absl::StrCat("global ", QuoteForMessage(GlobalName(global)),
                               " is not allowed in a state dict"));
  }
  return Push(NewSlot(std::move(global)));
}

absl::Status Machine::MakeTuple(unsigned char op) {
  std::vector<SlotPtr> items;
  if (op == kTuple) {
    ASSIGN_OR_RETURN(items, PopMark());
  } else if (op != kEmptyTuple) {
    ASSIGN_OR_RETURN(items, PopN(op - kTuple1 + 1));
  }
  Tuple tuple;
  int depth = 1;
  for (const SlotPtr& item : items) {
    item->frozen = true;
    depth = std::max(depth, 1 + item->value.depth);
    tuple.items.push_back(Share(item));
  }
  RETURN_IF_ERROR(CheckDepth(depth));
  return Push(NewSlot(std::move(tuple), depth));
}

template <typename C>
absl::StatusOr<std::pair<SlotPtr, C*>> Machine::AddTarget(
    unsigned char op, const std::vector<SlotPtr>& items,
    std::string_view preposition, std::string_view a_container) {
  ASSIGN_OR_RETURN(SlotPtr target, Top());
  auto* container = std::get_if<C>(&target->value.v);
  if (container == nullptr) {
    return DataLoss(absl::StrCat(ToAbsl(OpcodeName(op)), " ",
                                 ToAbsl(preposition), " ",
                                 AType(target->value)));
  }
  for (const SlotPtr& item : items) item->frozen = true;
  if (target->frozen) {
    return DataLoss(absl::StrCat(ToAbsl(OpcodeName(op)), " ",
                                 ToAbsl(preposition), " ",
                                 ToAbsl(a_container),
                                 " already nested in a value"));
  }
  return std::make_pair(std::move(target), container);
}

absl::Status Machine::Append(unsigned char op) {
  std::vector<SlotPtr> items;
  if (op == kAppends) {
    ASSIGN_OR_RETURN(items, PopMark());
  } else {
    ASSIGN_OR_RETURN(items, PopN(1));
  }
  ASSIGN_OR_RETURN(auto target_list, AddTarget<List>(op, items, "to", "a list"));
  auto& [target, list] = target_list;
  for (const SlotPtr& item : items) {
    target->value.depth = std::max(target->value.depth, 1 + item->value.depth);
    list->items.push_back(Share(item));
  }
  return CheckDepth(target->value.depth);
}

absl::Status Machine::SetItems(unsigned char op) {
  std::vector<SlotPtr> items;
  if (op == kSetItems) {
    ASSIGN_OR_RETURN(items, PopMark());
    if (items.size() % 2 != 0) {
      return DataLoss(absl::StrCat("SETITEMS with an odd number of values (",
                                   items.size(), ")"));
    }
  } else {
    ASSIGN_OR_RETURN(items, PopN(2));
  }
  ASSIGN_OR_RETURN(auto target_dict, AddTarget<Dict>(op, items, "on", "a dict"));
  auto& [target, dict] = target_dict;
  if (target->keys == nullptr) {
    target->keys = std::make_unique<std::unordered_map<std::string, size_t>>();
  }
  for (size_t i = 0; i < items.size(); i += 2) {
    ValuePtr key = Share(items[i]), value = Share(items[i + 1]);
    target->value.depth =
        std::max({target->value.depth, 1 + key->depth, 1 + value->depth});
    auto [it, inserted] =
        target->keys->try_emplace(DictKey(key), dict->items.size());
    if (inserted) {
      dict->items.emplace_back(std::move(key), std::move(value));
    } else {
      dict->items[it->second].second = std::move(value);
    }
  }
  return CheckDepth(target->value.depth);
}

absl::Status Machine::Build() {
  ASSIGN_OR_RETURN(SlotPtr state, Pop());
  ASSIGN_OR_RETURN(SlotPtr object, Top());
  // Only OrderedDict's state ({'_metadata': ...} of a module's state dict)
  // is expected; it carries nothing Garden needs, so it is checked and dropped.
  if (As<Dict>(object->value) == nullptr) {
    return DataLoss(absl::StrCat("BUILD on ", AType(object->value)));
  }
  if (As<Dict>(state->value) == nullptr && As<None>(state->value) == nullptr) {
    return DataLoss(absl::StrCat("BUILD with ", AType(state->value),
                                 " state (a dict or None expected)"));
  }
  state->frozen = true;
  return absl::OkStatus();
}

absl::Status Machine::Reduce() {
  ASSIGN_OR_RETURN(SlotPtr args_slot, Pop());
  ASSIGN_OR_RETURN(SlotPtr callable_slot, Pop());
  const auto* callable = As<Global>(callable_slot->value);
  if (callable == nullptr) {
    return Refuse(absl::StrCat("REDUCE of ", AType(callable_slot->value)));
  }
  const auto* args = As<Tuple>(args_slot->value);
  if (args == nullptr) {
    return Refuse(absl::StrCat("REDUCE of ", GlobalName(*callable), " with ",
                               AType(args_slot->value), " for arguments"));
  }
  args_slot->frozen = true;
  SlotPtr result;
  if (Is(*callable, "collections", "OrderedDict")) {
    if (!args->items.empty()) {
      return Refuse("REDUCE of collections.OrderedDict with arguments");
    }
    result = NewSlot(Dict{});
  } else if (Is(*callable, "torch._utils", "_rebuild_tensor_v2")) {
    ASSIGN_OR_RETURN(result, RebuildTensor(*args));
  } else if (Is(*callable, "torch._utils", "_rebuild_parameter")) {
    ASSIGN_OR_RETURN(result, RebuildParameter(*args));
  } else {
    return Refuse(absl::StrCat("REDUCE of ", GlobalName(*callable)));
  }
  return Push(std::move(result));
}

absl::StatusOr<std::vector<int64_t>> Machine::Dims(
    const Value& value, std::string_view what) const {
  const auto* tuple = As<Tuple>(value);
  if (tuple == nullptr) {
    return DataLoss(absl::StrCat("_rebuild_tensor_v2: ", ToAbsl(what), " is ",
                                 AType(value), ", not a tuple"));
  }
  if (tuple->items.size() > kMaxRank) {
    return DataLoss(absl::StrCat("_rebuild_tensor_v2: ", ToAbsl(what),
                                 " has rank ", tuple->items.size(),
                                 ", more than ", kMaxRank));
  }
  std::vector<int64_t> dims;
  for (const ValuePtr& item : tuple->items) {
    const auto* i = As<int64_t>(*item);
    if (i == nullptr) {
      return DataLoss(absl::StrCat("_rebuild_tensor_v2: ", ToAbsl(what),
                                   " holds ", AType(*item)));
    }
    dims.push_back(*i);
  }
  for (int64_t d : dims) {
    if (d < 0) {
      return DataLoss(absl::StrCat("_rebuild_tensor_v2: ", ToAbsl(what), " ",
                                   DimsString(dims), " has a negative entry ",
                                   d));
    }
  }
  return dims;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
// backward_hooks[, metadata]); bounds against the storage are the caller's.
absl::StatusOr<SlotPtr> Machine::RebuildTensor(const Tuple& args) {
  const auto& a = args.items;
  if (a.size() != 6 && a.size() != 7) {
    return DataLoss(absl::StrCat("_rebuild_tensor_v2 with ", a.size(),
                                 " arguments, not 6 or 7"));
  }
  const auto* offset = As<int64_t>(*a[1]);
  const auto* hooks = As<Dict>(*a[5]);
  if (As<Storage>(*a[0]) == nullptr || offset == nullptr ||
      As<bool>(*a[4]) == nullptr || hooks == nullptr) {
    return DataLoss(absl::StrCat(
        "_rebuild_tensor_v2 with arguments (", ToAbsl(TypeName(*a[0])), ", ",
        ToAbsl(TypeName(*a[1])), ", ..., ", ToAbsl(TypeName(*a[4])), ", ",
        ToAbsl(TypeName(*a[5])), "), not (storage, int, ..., bool, dict)"));
  }
  if (*offset < 0) {
    return DataLoss(absl::StrCat("_rebuild_tensor_v2: storage offset ", *offset,
                                 " is negative"));
  }
  if (!hooks->items.empty()) {
    return DataLoss("_rebuild_tensor_v2 with backward hooks");
  }
  Tensor tensor;
  ASSIGN_OR_RETURN(tensor.size, Dims(*a[2], "size"));
  ASSIGN_OR_RETURN(tensor.stride, Dims(*a[3], "stride"));
  if (tensor.size.size() != tensor.stride.size()) {
    return DataLoss(absl::StrCat("_rebuild_tensor_v2: size ",
                                 DimsString(tensor.size), " and stride ",
                                 DimsString(tensor.stride), " differ in rank"));
  }
  // Shares ownership with the Storage value, so tensors keep it alive.
  tensor.storage = std::shared_ptr<const Storage>(a[0], As<Storage>(*a[0]));
  tensor.storage_offset = *offset;
  return NewSlot(std::move(tensor));
}

// _rebuild_parameter(tensor, requires_grad, backward_hooks) is the tensor.
absl::StatusOr<SlotPtr> Machine::RebuildParameter(const Tuple& args) {
  const auto& a = args.items;
  if (a.size() != 3 || As<Tensor>(*a[0]) == nullptr ||
      As<bool>(*a[1]) == nullptr || As<Dict>(*a[2]) == nullptr) {
    return DataLoss(
        "_rebuild_parameter with arguments other than (Tensor, bool, dict)");
  }
  if (!As<Dict>(*a[2])->items.empty()) {
    return DataLoss("_rebuild_parameter with backward hooks");
  }
  return NewSlot(*As<Tensor>(*a[0]));
}

absl::Status Machine::PersistentId() {
  ASSIGN_OR_RETURN(SlotPtr pid, Pop());
  ASSIGN_OR_RETURN(SlotPtr storage, MakeStorage(pid->value));
  return Push(std::move(storage));
}

// ('storage', <storage class>, key, location, numel) -> a Storage, the same
// one for every persistent id with its key (as torch.load caches them).
absl::StatusOr<SlotPtr> Machine::MakeStorage(const Value& pid) {
  const auto* t = As<Tuple>(pid);
  const std::string* tag = nullptr;
  const Global* cls = nullptr;
  const std::string *key = nullptr, *location = nullptr;
  const int64_t* numel = nullptr;
  if (t != nullptr && t->items.size() == 5) {
    tag = As<std::string>(*t->items[0]);
    cls = As<Global>(*t->items[1]);
    key = As<std::string>(*t->items[2]);
    location = As<std::string>(*t->items[3]);
    numel = As<int64_t>(*t->items[4]);
  }
  std::optional<DType> dtype;
  if (cls != nullptr) dtype = StorageDType(*cls);
  if (tag == nullptr || *tag != "storage" || !dtype.has_value() ||
      key == nullptr || location == nullptr || numel == nullptr) {
    return Refuse(
        absl::StrCat("persistent id is not a storage (", AType(pid), ")"));
  }
  if (*numel < 0) {
    return DataLoss(
        absl::StrCat("storage ", QuoteForMessage(*key), " has ", *numel, " elements"));
  }
  Storage storage{*dtype, *key, *location, *numel};
  auto [it, inserted] = storages_.try_emplace(*key);
  if (inserted) {
    it->second = NewSlot(std::move(storage));
    return it->second;
  }
  const Storage& seen = std::get<Storage>(it->second->value.v);
  if (seen.dtype != storage.dtype || seen.numel != storage.numel ||
      seen.location != storage.location) {
    return DataLoss(absl::StrCat(
        "storage ", QuoteForMessage(*key), " is ", ToAbsl(DTypeName(storage.dtype)), "[",
        storage.numel, "] on ", QuoteForMessage(storage.location), " but was ",
        ToAbsl(DTypeName(seen.dtype)), "[", seen.numel, "] on ",
        QuoteForMessage(seen.location)));
  }
  return it->second;
}

}  // namespace

absl::StatusOr<ValuePtr> Unpickle(std::string_view bytes, std::string_view name,
                                  const Options& options) {
  return Machine(bytes, name, options).Run();
}

std::string_view TypeName(const Value& value) {
  static constexpr std::string_view kNames[] = {
      "None", "bool", "int",    "float",   "str",   "tuple",
      "list", "dict", "global", "storage", "Tensor"};
  static_assert(std::size(kNames) == std::variant_size_v<decltype(Value::v)>);
  return kNames[value.v.index()];
}

}  // namespace garden::pickle

// A restricted pickle machine for PyTorch state dicts. It never executes
// anything: it knows only the opcodes a torch.save'd state dict needs
// (protocol 2) and only these globals, whose effect it emulates:
//   collections.OrderedDict             -> a Dict
//   torch._utils._rebuild_tensor_v2     -> a Tensor (storage, offset, size,
//                                          stride; requires_grad, hooks and
//                                          metadata are checked and dropped)
//   torch._utils._rebuild_parameter     -> its Tensor argument
//   torch.{Half,BFloat16,Float,Double,Byte,Char,Short,Int,Long,Bool}Storage
//                                       -> the dtype of a persistent storage
// Persistent ids (BINPERSID) must be ('storage', <storage class>, key,
// location, numel) and become Storage values.
//
// Errors name the pickle (its `name`), the byte offset and the opcode or
// global: FAILED_PRECONDITION for content it refuses (another opcode,
// another global, a persistent id that is not a storage, a REDUCE of anything
// but the globals above), DATA_LOSS for damage (truncated pickle, stack
// underflow, a memo index never stored, BUILD or SETITEMS on the wrong
// type, nesting deeper than Options::max_depth, no STOP).
#ifndef GARDEN_COMMON_FORMATS_PICKLE_MACHINE_H_
#define GARDEN_COMMON_FORMATS_PICKLE_MACHINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "common/formats/dtype.h"

namespace garden::pickle {

struct Value;
using ValuePtr = std::shared_ptr<const Value>;

struct None {};
struct Tuple {
  std::vector<ValuePtr> items;
};
struct List {
  std::vector<ValuePtr> items;
};
// An insertion-ordered dict (OrderedDict or dict). A repeated key keeps its
// first position and its last value, as Python does.
struct Dict {
  std::vector<std::pair<ValuePtr, ValuePtr>> items;
};
// A GLOBAL that was allowed but not yet applied (an argument of REDUCE, or a
// storage class inside a persistent id).
struct Global {
  std::string module, name;
};
struct Storage {
  DType dtype;
  std::string key;       // the archive entry is "<prefix>/data/<key>"
  std::string location;  // "cpu", "cuda:0", ...
  int64_t numel = 0;     // elements of dtype
};
struct Tensor {
  std::shared_ptr<const Storage> storage;
  int64_t storage_offset = 0;   // in elements
  std::vector<int64_t> size;    // shape
  std::vector<int64_t> stride;  // in elements, same rank as size
};

struct Value {
  std::variant<None, bool, int64_t, double, std::string, Tuple, List, Dict,
               Global, Storage, Tensor>
      v;
  int depth = 1;  // 1 for a scalar, 1 + the deepest item for a container
};

struct Options {
  // Containers nested deeper than this are DATA_LOSS (a state dict nests 4).
  int max_depth = 64;
  // The stack and the memo hold at most this many values.
  size_t max_values = 10'000'000;
};

// Runs the pickle in `bytes` to its STOP and returns the value on the stack.
// `name` prefixes every error message ("<name>: offset 42: ...").
absl::StatusOr<ValuePtr> Unpickle(std::string_view bytes, std::string_view name,
                                  const Options& options = Options());

// "dict", "tuple", "Tensor", ... for error messages.
std::string_view TypeName(const Value& value);

}  // namespace garden::pickle

#endif  // GARDEN_COMMON_FORMATS_PICKLE_MACHINE_H_

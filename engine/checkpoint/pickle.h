// A minimal, safe unpickler for the data.pkl that torch.save writes (pickle
// protocol 2; the protocol 3-5 opcodes that carry the same data are accepted
// too).
//
// Nothing is executed. GLOBAL / STACK_GLOBAL produce a `kGlobal` value naming
// the class or function; REDUCE and NEWOBJ produce a `kObject` recording the
// callable and its arguments; BUILD, APPEND(S) and SETITEM(S) on such an object
// record the state and items. The PyTorch reader then interprets the handful of
// reconstructors it knows (collections.OrderedDict,
// torch._utils._rebuild_tensor_v2, ...) as data.
//
// Values live in an arena owned by the Pickle, and refer to each other by
// pointer, so memoised values are shared exactly as in Python (a list filled by
// APPENDS after it was memoised is the same list wherever it is referenced) and
// self-referencing structures cannot leak.
#ifndef SUPRA_ENGINE_CHECKPOINT_PICKLE_H_
#define SUPRA_ENGINE_CHECKPOINT_PICKLE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace supra {

struct PickleValue {
  enum class Kind : uint8_t {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,        // unicode text (BINUNICODE...), or a protocol-1 BINSTRING
    kBytes,         // BINBYTES...
    kTuple,         // items
    kList,          // items
    kDict,          // dict_items, in insertion order (duplicate keys are kept)
    kGlobal,        // module.name, from GLOBAL / STACK_GLOBAL
    kPersistentId,  // args: the id object (torch: a 'storage' tuple)
    kObject,        // callable(*args) from REDUCE / NEWOBJ, plus what BUILD / APPEND / SETITEM added
  };

  Kind kind = Kind::kNone;
  bool bool_value = false;
  int64_t int_value = 0;
  double float_value = 0;
  std::string text;                                                           // kString, kBytes; kGlobal: the module
  std::string name;                                                           // kGlobal: the attribute name
  std::vector<const PickleValue*> items;                                      // kTuple, kList, kObject
  std::vector<std::pair<const PickleValue*, const PickleValue*>> dict_items;  // kDict, kObject
  const PickleValue* callable = nullptr;                                      // kObject
  const PickleValue* args = nullptr;   // kObject: a kTuple; kPersistentId: the id
  const PickleValue* state = nullptr;  // kObject: the BUILD argument, if any

  bool IsGlobal(std::string_view module, std::string_view attribute) const {
    return kind == Kind::kGlobal && text == module && name == attribute;
  }
  // True for the result of calling global module.attribute.
  bool IsCallOf(std::string_view module, std::string_view attribute) const {
    return kind == Kind::kObject && callable != nullptr && callable->IsGlobal(module, attribute);
  }
};

// "tuple", "global", ...
std::string_view PickleKindName(PickleValue::Kind kind);
// A short description for error messages: "int 3", "global torch.FloatStorage",
// "tuple of 5", "call of collections.OrderedDict", ...
std::string DescribePickleValue(const PickleValue& value);

class Pickle {
 public:
  Pickle(Pickle&&) = default;
  Pickle& operator=(Pickle&&) = default;

  // The object STOP returned.
  const PickleValue& root() const { return *root_; }

 private:
  friend class Unpickler;
  Pickle() = default;

  std::unique_ptr<std::deque<PickleValue>> values_;  // the arena; deque keeps addresses stable
  const PickleValue* root_ = nullptr;
};

// Unpickles `data`. `source` names it in messages (e.g. "model.bin:archive/data.pkl").
// DATA_LOSS for malformed or truncated input (a byte that is no pickle opcode, stack
// underflow, a missing MARK, an unknown memo key, an operand of the wrong kind);
// INVALID_ARGUMENT for well-formed pickles this reader does not handle (opcodes of
// protocol 0/1 text form, sets, extension codes, out-of-band buffers, protocol > 5,
// integers beyond 64 bits). Each message names the opcode and its offset.
absl::StatusOr<Pickle> Unpickle(std::span<const std::byte> data, std::string_view source);

}  // namespace supra

#endif  // SUPRA_ENGINE_CHECKPOINT_PICKLE_H_

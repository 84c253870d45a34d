#include "engine/checkpoint/pickle.h"

#include <bit>
#include <cstring>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/checkpoint/little_endian.h"
#include "engine/checkpoint/pickle_opcodes.h"
#include "engine/util/absl_compat.h"
#include "engine/util/status_macros.h"

namespace supra {

namespace op = pickle_op;

// The pickle virtual machine, minus everything that would run code.
class Unpickler {
 public:
  using Kind = PickleValue::Kind;

  Unpickler(std::span<const std::byte> data, std::string_view source) : data_(data), source_(source) {}

  absl::StatusOr<Pickle> Run() {
    result_.values_ = std::make_unique<std::deque<PickleValue>>();
    while (true) {
      op_offset_ = pos_;
      if (pos_ >= data_.size()) return Corrupt("pickle ends without STOP");
      op_ = static_cast<uint8_t>(data_[pos_++]);
      ASSIGN_OR_RETURN(const bool stop, Step());
      if (stop) break;
    }
    ASSIGN_OR_RETURN(PickleValue * root, Pop());
    result_.root_ = root;
    return std::move(result_);
  }

 private:
  // Executes the opcode in op_; true after STOP.
  absl::StatusOr<bool> Step() {
    switch (op_) {
      case op::kProto: {
        ASSIGN_OR_RETURN(const uint64_t proto, ReadUint(1));
        if (proto > 5) return Unsupported(absl::StrCat("pickle protocol ", proto));
        return false;
      }
      case op::kFrame: {  // a length prefix only; the framed opcodes follow inline
        ASSIGN_OR_RETURN(const uint64_t length, ReadUint(8));
        if (length > data_.size() - pos_) return Corrupt(absl::StrCat("frame of ", length, " bytes is truncated"));
        return false;
      }
      case op::kStop:
        return true;
      case op::kMark:
        marks_.push_back(stack_.size());
        return false;
      case op::kPop: {
        ASSIGN_OR_RETURN(PickleValue * unused, Pop());
        (void)unused;
        return false;
      }
      case op::kPopMark: {
        ASSIGN_OR_RETURN(std::vector<PickleValue*> unused, PopToMark());
        (void)unused;
        return false;
      }
      case op::kDup: {
        ASSIGN_OR_RETURN(PickleValue * top, Top());
        stack_.push_back(top);
        return false;
      }
      case op::kNone:
        Push(New(Kind::kNone));
        return false;
      case op::kNewTrue:
      case op::kNewFalse: {
        PickleValue* v = New(Kind::kBool);
        v->bool_value = op_ == op::kNewTrue;
        Push(v);
        return false;
      }
      case op::kBinInt: {  // signed 32-bit
        ASSIGN_OR_RETURN(const uint64_t raw, ReadUint(4));
        return PushInt(static_cast<int32_t>(static_cast<uint32_t>(raw)));
      }
      case op::kBinInt1: {
        ASSIGN_OR_RETURN(const uint64_t raw, ReadUint(1));
        return PushInt(static_cast<int64_t>(raw));
      }
      case op::kBinInt2: {
        ASSIGN_OR_RETURN(const uint64_t raw, ReadUint(2));
        return PushInt(static_cast<int64_t>(raw));
      }
      case op::kLong1:
      case op::kLong4: {  // little-endian two's complement of n bytes
        ASSIGN_OR_RETURN(const uint64_t n, ReadUint(op_ == op::kLong1 ? 1 : 4));
        if (n > 8) {
          if (n > data_.size() - pos_) return Corrupt(absl::StrCat("truncated (", n, "-byte integer)"));
          return Unsupported(absl::StrCat("integer of ", n, " bytes (more than 64 bits)"));
        }
        ASSIGN_OR_RETURN(const uint64_t raw, ReadUint(static_cast<int>(n)));
        int64_t value = static_cast<int64_t>(raw);
        if (n > 0 && n < 8 && (raw >> (8 * n - 1)) & 1) value = static_cast<int64_t>(raw | (~uint64_t{0} << (8 * n)));
        return PushInt(value);
      }
      case op::kBinFloat: {  // big-endian IEEE double
        ASSIGN_OR_RETURN(const std::span<const std::byte> bytes, Read(8));
        uint64_t bits = 0;
        for (std::byte b : bytes) bits = (bits << 8) | static_cast<uint8_t>(b);
        PickleValue* v = New(Kind::kFloat);
        v->float_value = std::bit_cast<double>(bits);
        Push(v);
        return false;
      }
      case op::kBinUnicode:
        return PushText(Kind::kString, 4);
      case op::kShortBinUnicode:
        return PushText(Kind::kString, 1);
      case op::kBinUnicode8:
        return PushText(Kind::kString, 8);
      case op::kBinString:  // the length is signed; a negative one reads as huge, so as truncated
        return PushText(Kind::kString, 4);
      case op::kShortBinString:
        return PushText(Kind::kString, 1);
      case op::kBinBytes:
        return PushText(Kind::kBytes, 4);
      case op::kShortBinBytes:
        return PushText(Kind::kBytes, 1);
      case op::kBinBytes8:
        return PushText(Kind::kBytes, 8);
      case op::kEmptyTuple:
        Push(New(Kind::kTuple));
        return false;
      case op::kEmptyList:
        Push(New(Kind::kList));
        return false;
      case op::kEmptyDict:
        Push(New(Kind::kDict));
        return false;
      case op::kTuple:
      case op::kList: {
        ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopToMark());
        PickleValue* v = New(op_ == op::kTuple ? Kind::kTuple : Kind::kList);
        v->items.assign(items.begin(), items.end());
        Push(v);
        return false;
      }
      case op::kTuple1:
      case op::kTuple2:
      case op::kTuple3: {
        const size_t n = op_ - op::kTuple1 + 1;
        if (stack_.size() < n + CurrentMark()) return Corrupt("stack underflow");
        PickleValue* v = New(Kind::kTuple);
        v->items.assign(stack_.end() - static_cast<ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        Push(v);
        return false;
      }
      case op::kDict: {
        ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopToMark());
        PickleValue* v = New(Kind::kDict);
        RETURN_IF_ERROR(AddPairs(*v, items));
        Push(v);
        return false;
      }
      case op::kAppend: {
        ASSIGN_OR_RETURN(PickleValue * item, Pop());
        ASSIGN_OR_RETURN(PickleValue * target, Top());
        RETURN_IF_ERROR(CheckAppendable(*target));
        target->items.push_back(item);
        return false;
      }
      case op::kAppends: {
        ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopToMark());
        ASSIGN_OR_RETURN(PickleValue * target, Top());
        RETURN_IF_ERROR(CheckAppendable(*target));
        target->items.insert(target->items.end(), items.begin(), items.end());
        return false;
      }
      case op::kSetItem: {
        ASSIGN_OR_RETURN(PickleValue * value, Pop());
        ASSIGN_OR_RETURN(PickleValue * key, Pop());
        ASSIGN_OR_RETURN(PickleValue * target, Top());
        RETURN_IF_ERROR(CheckSettable(*target));
        target->dict_items.emplace_back(key, value);
        return false;
      }
      case op::kSetItems: {
        ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopToMark());
        ASSIGN_OR_RETURN(PickleValue * target, Top());
        RETURN_IF_ERROR(CheckSettable(*target));
        RETURN_IF_ERROR(AddPairs(*target, items));
        return false;
      }
      case op::kGlobal: {  // "module\nname\n"
        PickleValue* v = New(Kind::kGlobal);
        ASSIGN_OR_RETURN(v->text, ReadLine());
        ASSIGN_OR_RETURN(v->name, ReadLine());
        Push(v);
        return false;
      }
      case op::kStackGlobal: {
        ASSIGN_OR_RETURN(PickleValue * name, Pop());
        ASSIGN_OR_RETURN(PickleValue * module, Pop());
        if (module->kind != Kind::kString || name->kind != Kind::kString) {
          return Corrupt("module and name must be strings");
        }
        PickleValue* v = New(Kind::kGlobal);
        v->text = module->text;
        v->name = name->text;
        Push(v);
        return false;
      }
      case op::kBinPersId: {
        ASSIGN_OR_RETURN(PickleValue * id, Pop());
        PickleValue* v = New(Kind::kPersistentId);
        v->args = id;
        Push(v);
        return false;
      }
      case op::kReduce:    // callable, args
      case op::kNewObj: {  // cls, args
        ASSIGN_OR_RETURN(PickleValue * args, Pop());
        ASSIGN_OR_RETURN(PickleValue * callable, Pop());
        if (args->kind != Kind::kTuple) {
          return Corrupt(absl::StrCat("arguments must be a tuple, not ", DescribePickleValue(*args)));
        }
        PickleValue* v = New(Kind::kObject);
        v->callable = callable;
        v->args = args;
        Push(v);
        return false;
      }
      case op::kBuild: {
        ASSIGN_OR_RETURN(PickleValue * state, Pop());
        ASSIGN_OR_RETURN(PickleValue * target, Top());
        if (target->kind != Kind::kObject) {
          return Corrupt(absl::StrCat("cannot set the state of a ", DescribePickleValue(*target)));
        }
        target->state = state;
        return false;
      }
      case op::kBinPut:
        return Put(1);
      case op::kLongBinPut:
        return Put(4);
      case op::kMemoize: {
        ASSIGN_OR_RETURN(PickleValue * top, Top());
        memo_[memo_.size()] = top;
        return false;
      }
      case op::kBinGet:
        return Get(1);
      case op::kLongBinGet:
        return Get(4);
      default: {
        if (pickle_op::Name(op_).empty()) return Corrupt("not a pickle opcode");
        return Unsupported("opcode not supported by this reader");
      }
    }
  }

  // ---- operand reading -----------------------------------------------------
  absl::StatusOr<std::span<const std::byte>> Read(uint64_t n) {
    if (n > data_.size() - pos_) return Corrupt(absl::StrCat("truncated (needs ", n, " more bytes)"));
    std::span<const std::byte> out = data_.subspan(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return out;
  }
  absl::StatusOr<uint64_t> ReadUint(int width) {
    ASSIGN_OR_RETURN(const std::span<const std::byte> bytes, Read(static_cast<uint64_t>(width)));
    return width == 0 ? 0 : LoadLittleEndian(bytes.data(), width);
  }
  absl::StatusOr<std::string> ReadLine() {
    const size_t start = pos_;
    while (pos_ < data_.size() && data_[pos_] != std::byte{'\n'}) ++pos_;
    if (pos_ >= data_.size()) return Corrupt("truncated (line without newline)");
    std::string line(reinterpret_cast<const char*>(data_.data() + start), pos_ - start);
    ++pos_;
    return line;
  }

  // ---- stack ---------------------------------------------------------------
  PickleValue* New(Kind kind) {
    PickleValue& v = result_.values_->emplace_back();
    v.kind = kind;
    return &v;
  }
  void Push(PickleValue* v) { stack_.push_back(v); }
  size_t CurrentMark() const { return marks_.empty() ? 0 : marks_.back(); }
  absl::StatusOr<PickleValue*> Top() {
    if (stack_.size() <= CurrentMark()) return Corrupt("stack underflow");
    return stack_.back();
  }
  absl::StatusOr<PickleValue*> Pop() {
    ASSIGN_OR_RETURN(PickleValue * v, Top());
    stack_.pop_back();
    return v;
  }
  absl::StatusOr<std::vector<PickleValue*>> PopToMark() {
    if (marks_.empty()) return Corrupt("no MARK to pop to");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue*> items(stack_.begin() + static_cast<ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  absl::StatusOr<bool> PushInt(int64_t value) {
    PickleValue* v = New(Kind::kInt);
    v->int_value = value;
    Push(v);
    return false;
  }
  absl::StatusOr<bool> PushText(Kind kind, int length_width) {
    ASSIGN_OR_RETURN(const uint64_t length, ReadUint(length_width));
    ASSIGN_OR_RETURN(const std::span<const std::byte> bytes, Read(length));
    PickleValue* v = New(kind);
    v->text.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    Push(v);
    return false;
  }
  absl::Status AddPairs(PickleValue& target, const std::vector<PickleValue*>& items) {
    if (items.size() % 2 != 0) return Corrupt("odd number of items for key/value pairs");
    for (size_t i = 0; i < items.size(); i += 2) target.dict_items.emplace_back(items[i], items[i + 1]);
    return absl::OkStatus();
  }
  absl::Status CheckAppendable(const PickleValue& target) {
    if (target.kind == Kind::kList || target.kind == Kind::kObject) return absl::OkStatus();
    return Corrupt(absl::StrCat("cannot append to a ", DescribePickleValue(target)));
  }
  absl::Status CheckSettable(const PickleValue& target) {
    if (target.kind == Kind::kDict || target.kind == Kind::kObject) return absl::OkStatus();
    return Corrupt(absl::StrCat("cannot set items of a ", DescribePickleValue(target)));
  }

  // ---- memo ----------------------------------------------------------------
  absl::StatusOr<bool> Put(int width) {
    ASSIGN_OR_RETURN(const uint64_t key, ReadUint(width));
    ASSIGN_OR_RETURN(PickleValue * top, Top());
    memo_[key] = top;
    return false;
  }
  absl::StatusOr<bool> Get(int width) {
    ASSIGN_OR_RETURN(const uint64_t key, ReadUint(width));
    auto it = memo_.find(key);
    if (it == memo_.end()) return Corrupt(absl::StrCat("memo key ", key, " was never stored"));
    Push(it->second);
    return false;
  }

  // ---- errors --------------------------------------------------------------
  std::string Where() const {
    const std::string_view name = pickle_op::Name(op_);
    return absl::StrCat(ToAbsl(source_), ": pickle opcode ", name.empty() ? "?" : ToAbsl(name), " (0x",
                        absl::Hex(op_, absl::kZeroPad2), ") at offset ", op_offset_);
  }
  absl::Status Corrupt(std::string_view problem) const {
    return absl::DataLossError(absl::StrCat(Where(), ": ", ToAbsl(problem)));
  }
  absl::Status Unsupported(std::string_view problem) const {
    return absl::InvalidArgumentError(absl::StrCat(Where(), ": ", ToAbsl(problem)));
  }

  std::span<const std::byte> data_;
  std::string_view source_;
  size_t pos_ = 0;
  size_t op_offset_ = 0;
  uint8_t op_ = 0;
  Pickle result_;
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;  // stack sizes at each open MARK
  std::unordered_map<uint64_t, PickleValue*> memo_;
};

std::string_view PickleKindName(PickleValue::Kind kind) {
  using Kind = PickleValue::Kind;
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kPersistentId:
      return "persistent id";
    case Kind::kObject:
      return "object";
  }
  return "?";
}

std::string DescribePickleValue(const PickleValue& value) {
  using Kind = PickleValue::Kind;
  const absl::string_view kind = ToAbsl(PickleKindName(value.kind));
  switch (value.kind) {
    case Kind::kBool:
      return value.bool_value ? "bool True" : "bool False";
    case Kind::kInt:
      return absl::StrCat("int ", value.int_value);
    case Kind::kFloat:
      return absl::StrCat("float ", value.float_value);
    case Kind::kString:
      return absl::StrCat("str '", value.text.substr(0, 64), "'");
    case Kind::kGlobal:
      return absl::StrCat("global ", value.text, ".", value.name);
    case Kind::kTuple:
    case Kind::kList:
      return absl::StrCat(kind, " of ", value.items.size());
    case Kind::kDict:
      return absl::StrCat(kind, " of ", value.dict_items.size());
    case Kind::kObject:
      if (value.callable != nullptr && value.callable->kind == Kind::kGlobal) {
        return absl::StrCat("call of ", value.callable->text, ".", value.callable->name);
      }
      return "object";
    default:
      return std::string(kind);
  }
}

absl::StatusOr<Pickle> Unpickle(std::span<const std::byte> data, std::string_view source) {
  return Unpickler(data, source).Run();
}

}  // namespace supra

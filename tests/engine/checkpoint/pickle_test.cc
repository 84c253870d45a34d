#include "engine/checkpoint/pickle.h"

#include <cmath>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/checkpoint/test_files.h"

namespace supra {
namespace {

using ::testing::HasSubstr;
using testing::PickleWriter;
using Kind = PickleValue::Kind;

absl::StatusOr<Pickle> Load(const std::string& bytes) {
  return Unpickle(std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()), "test.pkl");
}

void ExpectError(const std::string& bytes, absl::StatusCode code, const std::string& needle) {
  auto pickle = Load(bytes);
  ASSERT_FALSE(pickle.ok());
  EXPECT_EQ(pickle.status().code(), code) << pickle.status();
  EXPECT_THAT(std::string(pickle.status().message()), HasSubstr(needle));
  EXPECT_THAT(std::string(pickle.status().message()), HasSubstr("test.pkl"));
}

TEST(PickleTest, Scalars) {
  PickleWriter w;
  w.Proto(2).Op('(').Op('N').Op(0x88).Op(0x89).Int(7).Int(300).Int(-5).Int(70000).Int(int64_t{1} << 40);
  w.Int(-(int64_t{1} << 40)).Float(-2.5).Str("héllo");
  w.Op('C').Op(3).Raw("abc");                              // SHORT_BINBYTES
  w.Op(0x8c).Op(2).Raw("hi");                              // SHORT_BINUNICODE
  w.Op('U').Op(2).Raw("py");                               // SHORT_BINSTRING
  w.Op(0x8a).Op(0);                                        // LONG1 of zero bytes: 0
  w.Op(0x8a).Op(2).Raw("\xff\x7f");                        // LONG1 32767
  w.Op(0x8a).Op(1).Raw("\x80");                            // LONG1 -128
  w.Op(0x8b).Raw(std::string("\x01\x00\x00\x00\xff", 5));  // LONG4 -1
  w.Op('t').Stop();
  auto pickle = Load(w.bytes());
  ASSERT_TRUE(pickle.ok()) << pickle.status();
  const PickleValue& t = pickle->root();
  ASSERT_EQ(t.kind, Kind::kTuple);
  ASSERT_EQ(t.items.size(), 18u);
  EXPECT_EQ(t.items[0]->kind, Kind::kNone);
  EXPECT_TRUE(t.items[1]->bool_value);
  EXPECT_FALSE(t.items[2]->bool_value);
  EXPECT_EQ(t.items[3]->int_value, 7);
  EXPECT_EQ(t.items[4]->int_value, 300);
  EXPECT_EQ(t.items[5]->int_value, -5);
  EXPECT_EQ(t.items[6]->int_value, 70000);
  EXPECT_EQ(t.items[7]->int_value, int64_t{1} << 40);
  EXPECT_EQ(t.items[8]->int_value, -(int64_t{1} << 40));
  EXPECT_EQ(t.items[9]->float_value, -2.5);
  EXPECT_EQ(t.items[10]->text, "héllo");
  EXPECT_EQ(t.items[11]->kind, Kind::kBytes);
  EXPECT_EQ(t.items[11]->text, "abc");
  EXPECT_EQ(t.items[12]->text, "hi");
  EXPECT_EQ(t.items[13]->text, "py");
  EXPECT_EQ(t.items[14]->int_value, 0);
  EXPECT_EQ(t.items[15]->int_value, 32767);
  EXPECT_EQ(t.items[16]->int_value, -128);
  EXPECT_EQ(t.items[17]->int_value, -1);
}

TEST(PickleTest, ContainersAndMemoSharing) {
  // l = []; d = {"a": l, "b": (1, 2, 3)}; l.append(d["b"]) after memoising l.
  PickleWriter w;
  w.Proto(2).Op('}').Put(0).Op('(').Str("a").Op(']').Put(1).Str("b").Int(1).Int(2).Int(3).Op(0x87).Put(2);
  w.Op('u').Get(1).Get(2).Op('a').Op('0');     // APPEND to the memoised list, then POP it
  w.Op('(').Int(1).Int(2).Op('1');             // POP_MARK discards everything since the MARK
  w.Str("c").Op(')').Op('2').Op('0').Op('s');  // DUP then POP: still one empty tuple; SETITEM
  w.Stop();
  auto pickle = Load(w.bytes());
  ASSERT_TRUE(pickle.ok()) << pickle.status();
  const PickleValue& d = pickle->root();
  ASSERT_EQ(d.kind, Kind::kDict);
  ASSERT_EQ(d.dict_items.size(), 3u);
  EXPECT_EQ(d.dict_items[0].first->text, "a");
  EXPECT_EQ(d.dict_items[2].first->text, "c");
  EXPECT_EQ(d.dict_items[2].second->kind, Kind::kTuple);
  const PickleValue& list = *d.dict_items[0].second;
  ASSERT_EQ(list.kind, Kind::kList);
  ASSERT_EQ(list.items.size(), 1u);
  EXPECT_EQ(list.items[0], d.dict_items[1].second);  // the same tuple object
  EXPECT_EQ(list.items[0]->items.size(), 3u);
  EXPECT_EQ(list.items[0]->items[2]->int_value, 3);
}

TEST(PickleTest, GlobalsReduceBuildAndPersistentIds) {
  PickleWriter w;
  w.Proto(2).Global("collections", "OrderedDict").Op(')').Op('R').Put(0);
  w.Op('(').Str("k").Op('(').Str("storage").Global("torch", "FloatStorage").Str("0").Op('t').Op('Q');
  w.Op('u');
  w.Op('}').Str("_metadata").Int(1).Op('s').Op('b');  // BUILD with a state dict
  w.Stop();
  auto pickle = Load(w.bytes());
  ASSERT_TRUE(pickle.ok()) << pickle.status();
  const PickleValue& root = pickle->root();
  EXPECT_TRUE(root.IsCallOf("collections", "OrderedDict"));
  EXPECT_EQ(DescribePickleValue(root), "call of collections.OrderedDict");
  ASSERT_EQ(root.dict_items.size(), 1u);
  const PickleValue& pid = *root.dict_items[0].second;
  ASSERT_EQ(pid.kind, Kind::kPersistentId);
  ASSERT_EQ(pid.args->items.size(), 3u);
  EXPECT_TRUE(pid.args->items[1]->IsGlobal("torch", "FloatStorage"));
  ASSERT_NE(root.state, nullptr);
  EXPECT_EQ(root.state->dict_items[0].first->text, "_metadata");
}

TEST(PickleTest, Protocol4Opcodes) {
  PickleWriter w;
  w.Proto(4).Op(0x95).Raw(std::string("\x20\0\0\0\0\0\0\0", 8));  // FRAME
  w.Op(0x8c).Op(5).Raw("torch").Op(0x94);                         // SHORT_BINUNICODE, MEMOIZE -> 0
  w.Op(0x8c).Op(4).Raw("Size").Op(0x94);                          // -> 1
  w.Op(0x93).Op(0x94);                                            // STACK_GLOBAL -> 2
  w.Op('h').Op(2).Op(')').Op(0x81);                               // BINGET 2, NEWOBJ
  w.Op(0x8d).Raw(std::string("\x01\0\0\0\0\0\0\0", 8)).Raw("x");  // BINUNICODE8
  w.Op(0x86).Stop();
  auto pickle = Load(w.bytes());
  ASSERT_TRUE(pickle.ok()) << pickle.status();
  const PickleValue& t = pickle->root();
  ASSERT_EQ(t.items.size(), 2u);
  EXPECT_TRUE(t.items[0]->IsCallOf("torch", "Size"));
  EXPECT_EQ(t.items[1]->text, "x");
}

TEST(PickleTest, SelfReferenceDoesNotLeakOrLoop) {
  // l = []; l.append(l)
  PickleWriter w;
  w.Proto(2).Op(']').Put(0).Get(0).Op('a').Stop();
  auto pickle = Load(w.bytes());
  ASSERT_TRUE(pickle.ok()) << pickle.status();
  EXPECT_EQ(pickle->root().items[0], &pickle->root());
}

TEST(PickleTest, LongMemoIndices) {
  PickleWriter w;
  w.Proto(2).Str("far").Put(100000).Op('0').Get(100000).Stop();
  auto pickle = Load(w.bytes());
  ASSERT_TRUE(pickle.ok()) << pickle.status();
  EXPECT_EQ(pickle->root().text, "far");
}

TEST(PickleTest, NotAnOpcode) {
  ExpectError(PickleWriter().Proto(2).Op(0xff).Stop().bytes(), absl::StatusCode::kDataLoss,
              "opcode ? (0xff) at offset 2: not a pickle opcode");
  ExpectError(PickleWriter().Proto(2).Op('z').bytes(), absl::StatusCode::kDataLoss, "(0x7a) at offset 2");
}

TEST(PickleTest, KnownButUnsupportedOpcodes) {
  ExpectError(PickleWriter().Proto(4).Op(0x8f).Stop().bytes(), absl::StatusCode::kInvalidArgument,
              "EMPTY_SET (0x8f) at offset 2");
  ExpectError(PickleWriter().Raw("I42\n.").bytes(), absl::StatusCode::kInvalidArgument, "INT (0x49) at offset 0");
  ExpectError(PickleWriter().Proto(2).Op(0x82).Op(1).Stop().bytes(), absl::StatusCode::kInvalidArgument, "EXT1");
  ExpectError(PickleWriter().Proto(6).Stop().bytes(), absl::StatusCode::kInvalidArgument, "pickle protocol 6");
  ExpectError(PickleWriter().Proto(2).Op(0x8a).Op(9).Raw(std::string(9, '\1')).Stop().bytes(),
              absl::StatusCode::kInvalidArgument, "integer of 9 bytes");
}

TEST(PickleTest, StructuralErrors) {
  const auto kLoss = absl::StatusCode::kDataLoss;
  ExpectError(PickleWriter().Proto(2).Op('R').Stop().bytes(), kLoss, "REDUCE (0x52) at offset 2: stack underflow");
  ExpectError(PickleWriter().Proto(2).Op('.').bytes(), kLoss, "STOP");
  ExpectError(PickleWriter().Proto(2).Int(1).Op('t').Stop().bytes(), kLoss, "TUPLE (0x74) at offset 4: no MARK");
  ExpectError(PickleWriter().Proto(2).Get(5).Stop().bytes(), kLoss, "BINGET (0x68) at offset 2: memo key 5");
  ExpectError(PickleWriter().Proto(2).Op('(').Op(0x85).Stop().bytes(), kLoss, "TUPLE1");  // MARK hides the stack
  ExpectError(PickleWriter().Proto(2).Int(1).Int(2).Op('a').Stop().bytes(), kLoss, "cannot append to a int 1");
  ExpectError(PickleWriter().Proto(2).Op(']').Int(1).Int(2).Op('s').Stop().bytes(), kLoss,
              "cannot set items of a list");
  ExpectError(PickleWriter().Proto(2).Op('}').Op('(').Int(1).Op('u').Stop().bytes(), kLoss, "odd number");
  ExpectError(PickleWriter().Proto(2).Op('}').Op('}').Op('b').Stop().bytes(), kLoss, "cannot set the state");
  ExpectError(PickleWriter().Proto(2).Global("m", "f").Int(1).Op('R').Stop().bytes(), kLoss,
              "arguments must be a tuple");
  ExpectError(PickleWriter().Proto(4).Int(1).Str("x").Op(0x93).Stop().bytes(), kLoss, "must be strings");
  ExpectError(PickleWriter().Proto(2).Raw("cmodule_without_newline").bytes(), kLoss, "line without newline");
  ExpectError(PickleWriter().Proto(4).Op(0x95).Raw(std::string("\xff\0\0\0\0\0\0\0", 8)).Stop().bytes(), kLoss,
              "frame of 255 bytes is truncated");
  ExpectError(PickleWriter().Proto(2).Op('X').Raw("\xff\xff\xff\x7f").Raw("short").Stop().bytes(), kLoss,
              "BINUNICODE (0x58) at offset 2: truncated");
  ExpectError("", kLoss, "pickle ends without STOP");
}

// Every prefix of a realistic torch pickle fails cleanly (DATA_LOSS), never crashes.
TEST(PickleTest, EveryTruncationIsDataLoss) {
  const std::string bytes = testing::TorchStateDictPickle({
      {.name = "w", .key = "0", .storage_numel = 6, .size = {2, 3}},
      {.name = "p", .storage_type = "HalfStorage", .key = "1", .storage_numel = 4, .size = {4}, .parameter = true},
  });
  ASSERT_TRUE(Load(bytes).ok());
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    auto pickle = Load(bytes.substr(0, cut));
    ASSERT_FALSE(pickle.ok()) << cut;
    EXPECT_EQ(pickle.status().code(), absl::StatusCode::kDataLoss) << cut << ": " << pickle.status();
  }
}

// Every single-byte corruption of that pickle is either still a pickle or an
// error; the reader never crashes, loops or reads out of bounds (run under ASan).
TEST(PickleTest, ByteCorruptionsNeverCrash) {
  const std::string bytes =
      testing::TorchStateDictPickle({{.name = "w", .key = "0", .storage_numel = 6, .size = {2, 3}}});
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int value : {0x00, 0x28, 0x2e, 0x71, 0x80, 0xff}) {
      std::string corrupt = bytes;
      corrupt[i] = static_cast<char>(value);
      auto pickle = Load(corrupt);
      if (!pickle.ok()) {
        EXPECT_THAT(pickle.status().code(),
                    ::testing::AnyOf(absl::StatusCode::kDataLoss, absl::StatusCode::kInvalidArgument));
      }
    }
  }
}

}  // namespace
}  // namespace supra

// ReadPytorchZip on torch.save archives built by the test (see test_files.h), so
// that every branch of the state-dict interpretation can be reached on purpose.
#include <cstring>
#include <string>
#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/checkpoint/test_files.h"

namespace supra {
namespace {

using testing::BuildTorchZip;
using ::testing::ElementsAre;
using testing::F32Bytes;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::TorchStateDictPickle;
using testing::TorchTensorSpec;
using testing::ZipOptions;

std::vector<float> Floats(const TensorView& view) {
  std::vector<float> out(static_cast<size_t>(view.numel()));
  EXPECT_TRUE(ConvertToFloat32(view.dtype, view.data, out.size(), out.data()));
  return out;
}

absl::StatusOr<Checkpoint> ReadBytes(const TempDir& dir, const std::string& bytes) {
  return ReadPytorchZip(dir.Write("pytorch_model.bin", bytes));
}

// Two storages: "0" holds 8 floats 0..7, "1" holds 3 halves.
std::vector<std::pair<std::string, std::string>> SampleStorages() {
  return {{"0", F32Bytes({0, 1, 2, 3, 4, 5, 6, 7})}, {"1", testing::U16Bytes({0x3C00, 0x4000, 0xC200})}};
}

TEST(PytorchReaderTest, ReadsTensorsViewsAndParameters) {
  const std::string pickle = TorchStateDictPickle({
      {.name = "matrix", .key = "0", .storage_numel = 8, .size = {2, 4}},
      {.name = "tail", .key = "0", .storage_numel = 8, .offset = 5, .size = {3}},
      {.name = "column", .key = "0", .storage_numel = 8, .offset = 2, .size = {2, 1}, .stride = {1, 99}},
      {.name = "scalar", .key = "0", .storage_numel = 8, .offset = 7, .size = {}},
      {.name = "empty", .key = "0", .storage_numel = 8, .offset = 8, .size = {0, 3}, .stride = {5, 7}},
      {.name = "half", .storage_type = "HalfStorage", .key = "1", .storage_numel = 3, .size = {3}, .parameter = true},
  });
  for (const ZipOptions& options : {ZipOptions{.torch_style = true}, ZipOptions{.zip64 = true}, ZipOptions{}}) {
    TempDir dir;
    auto checkpoint = ReadBytes(dir, BuildTorchZip("archive", pickle, SampleStorages(), options));
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    EXPECT_EQ(checkpoint->format(), options.zip64 ? "pytorch zip (zip64)" : "pytorch zip");
    ASSERT_EQ(checkpoint->tensors().size(), 6u);

    const TensorView& matrix = *checkpoint->Find("matrix");
    EXPECT_EQ(matrix.dtype, DType::kF32);
    EXPECT_THAT(matrix.shape, ElementsAre(2, 4));
    EXPECT_EQ(matrix.nbytes, 32u);
    EXPECT_THAT(Floats(matrix), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
    EXPECT_THAT(matrix.source, HasSubstr("pytorch_model.bin:archive/data/0"));

    const TensorView& tail = *checkpoint->Find("tail");
    EXPECT_EQ(tail.data, matrix.data + size_t{5} * 4);  // a view of the same storage
    EXPECT_THAT(Floats(tail), ElementsAre(5, 6, 7));
    EXPECT_THAT(Floats(*checkpoint->Find("column")), ElementsAre(2, 3));
    EXPECT_THAT(Floats(*checkpoint->Find("scalar")), ElementsAre(7));
    EXPECT_TRUE(checkpoint->Find("scalar")->shape.empty());
    EXPECT_EQ(checkpoint->Find("empty")->nbytes, 0u);

    const TensorView& half = *checkpoint->Find("half");
    EXPECT_EQ(half.dtype, DType::kF16);
    EXPECT_THAT(Floats(half), ElementsAre(1, 2, -3));
  }
}

TEST(PytorchReaderTest, EveryStorageType) {
  const std::vector<std::pair<std::string, DType>> types = {
      {"FloatStorage", DType::kF32},  {"BFloat16Storage", DType::kBF16}, {"HalfStorage", DType::kF16},
      {"DoubleStorage", DType::kF64}, {"IntStorage", DType::kI32},       {"LongStorage", DType::kI64}};
  for (const auto& [type, dtype] : types) {
    TempDir dir;
    const std::string pickle =
        TorchStateDictPickle({{.name = "t", .storage_type = type, .key = "0", .storage_numel = 2, .size = {2}}});
    auto checkpoint = ReadBytes(dir, BuildTorchZip("m", pickle, {{"0", std::string(2 * DTypeSize(dtype), '\1')}}));
    ASSERT_TRUE(checkpoint.ok()) << type << ": " << checkpoint.status();
    EXPECT_EQ(checkpoint->Find("t")->dtype, dtype) << type;
  }
}

TEST(PytorchReaderTest, PrefixIsAnyTopFolderAndByteOrderIsOptional) {
  TempDir dir;
  const std::string pickle = TorchStateDictPickle({{.name = "t", .key = "7", .storage_numel = 1, .size = {1}}});
  auto checkpoint =
      ReadBytes(dir, BuildTorchZip("some model-v2", pickle, {{"7", F32Bytes({3})}}, {.torch_style = true}, ""));
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_THAT(Floats(*checkpoint->Find("t")), ElementsAre(3));
}

TEST(PytorchReaderTest, PlainDictRoot) {
  testing::PickleWriter w;
  w.Proto(2).Op('}').Op('(').Str("t").Global("torch._utils", "_rebuild_tensor_v2").Op('(');
  w.Op('(').Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(1).Op('t').Op('Q');
  w.Int(0).Op('(').Int(1).Op('t').Op('(').Int(1).Op('t').Op(0x89).Op('}').Op('t').Op('R').Op('u').Stop();
  TempDir dir;
  auto checkpoint = ReadBytes(dir, BuildTorchZip("a", w.bytes(), {{"0", F32Bytes({9})}}));
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_THAT(Floats(*checkpoint->Find("t")), ElementsAre(9));
}

void ExpectError(const std::string& bytes, absl::StatusCode code, const std::string& needle) {
  TempDir dir;
  auto checkpoint = ReadBytes(dir, bytes);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_EQ(checkpoint.status().code(), code) << checkpoint.status();
  EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr(needle));
  EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr("pytorch_model.bin"));
}

void ExpectTensorError(const TorchTensorSpec& spec, absl::StatusCode code, const std::string& needle) {
  ExpectError(BuildTorchZip("archive", TorchStateDictPickle({spec}), SampleStorages()), code, needle);
}

constexpr auto kLoss = absl::StatusCode::kDataLoss;
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

TEST(PytorchReaderTest, NonContiguousTensorIsRefusedByName) {
  ExpectTensorError({.name = "transposed", .key = "0", .storage_numel = 8, .size = {4, 2}, .stride = {1, 4}}, kInvalid,
                    "tensor 'transposed' is not contiguous (size [4, 2], stride [1, 4])");
  ExpectTensorError({.name = "strided", .key = "0", .storage_numel = 8, .size = {4}, .stride = {2}}, kInvalid,
                    "'strided' is not contiguous");
}

TEST(PytorchReaderTest, ExtentBeyondStorage) {
  ExpectTensorError({.name = "big", .key = "0", .storage_numel = 8, .size = {3, 3}}, kLoss,
                    "tensor 'big': elements [0, 0 + 9) lie outside its storage of 8 elements");
  ExpectTensorError({.name = "late", .key = "0", .storage_numel = 8, .offset = 6, .size = {3}}, kLoss,
                    "tensor 'late': elements [6, 6 + 3)");
  ExpectTensorError({.name = "huge",
                     .key = "0",
                     .storage_numel = 8,
                     .size = {1 << 30, 1 << 30, 1 << 30},
                     .stride = {int64_t{1} << 60, 1 << 30, 1}},
                    kLoss, "tensor 'huge'");
  ExpectTensorError({.name = "neg", .key = "0", .storage_numel = 8, .offset = -1, .size = {1}}, kLoss,
                    "bad storage offset");
  ExpectTensorError({.name = "negdim", .key = "0", .storage_numel = 8, .size = {-1}}, kLoss, "negative dimension");
}

TEST(PytorchReaderTest, StorageEntryDisagreesWithItsNumel) {
  ExpectTensorError({.name = "t", .key = "0", .storage_numel = 9, .size = {2}}, kLoss,
                    "storage entry 'archive/data/0' holds 32 bytes, but 9 elements of float32 were recorded");
  ExpectTensorError({.name = "t", .storage_type = "DoubleStorage", .key = "1", .storage_numel = 3, .size = {1}}, kLoss,
                    "holds 6 bytes");
}

TEST(PytorchReaderTest, MissingStorageEntry) {
  ExpectTensorError({.name = "t", .key = "42", .storage_numel = 1, .size = {1}}, kLoss,
                    "tensor 't': storage entry 'archive/data/42' is missing");
}

TEST(PytorchReaderTest, SameStorageDescribedDifferently) {
  const std::string pickle = TorchStateDictPickle({
      {.name = "a", .key = "0", .storage_numel = 8, .size = {1}},
      {.name = "b", .storage_type = "IntStorage", .key = "0", .storage_numel = 8, .size = {1}},
  });
  ExpectError(BuildTorchZip("archive", pickle, SampleStorages()), kLoss, "storage '0' is described twice");
}

TEST(PytorchReaderTest, UnsupportedStorageType) {
  ExpectTensorError({.name = "c", .storage_type = "ComplexFloatStorage", .key = "0", .storage_numel = 4, .size = {4}},
                    kInvalid, "tensor 'c' has unsupported storage type global torch.ComplexFloatStorage");
}

TEST(PytorchReaderTest, CompressedStorage) {
  std::vector<testing::ZipEntrySpec> entries = {
      {"archive/data.pkl", TorchStateDictPickle({{.name = "t", .key = "0", .storage_numel = 1, .size = {1}}})},
      {"archive/data/0", F32Bytes({1}), 8}};
  ExpectError(testing::BuildZip(entries), kInvalid, "entry 'archive/data/0' uses compression method 8 (deflate)");
}

TEST(PytorchReaderTest, BigEndianIsRefused) {
  const std::string pickle = TorchStateDictPickle({{.name = "t", .key = "0", .storage_numel = 8, .size = {8}}});
  ExpectError(BuildTorchZip("archive", pickle, SampleStorages(), {.torch_style = true}, "big"), kInvalid,
              "byte order 'big'");
}

TEST(PytorchReaderTest, LegacyFormatIsRefused) {
  ExpectError(TorchStateDictPickle({}), kInvalid, "legacy (pre-1.6, non-zip) torch.save format");
}

TEST(PytorchReaderTest, NotATorchArchive) {
  ExpectError(testing::BuildZip({{"readme.txt", "hi"}}), kInvalid, "no <folder>/data.pkl entry");
  ExpectError(testing::BuildZip({{"a/b/data.pkl", "x"}}), kInvalid, "no <folder>/data.pkl entry");
  ExpectError(testing::BuildZip({{"a/data.pkl", "x"}, {"b/data.pkl", "y"}}), kInvalid, "several top-level folders");
  ExpectError("definitely not a zip file, but long enough to search", kLoss, "no end-of-central-directory record");
}

TEST(PytorchReaderTest, UnexpectedPickleContent) {
  auto zip_with = [](const std::string& pickle) { return BuildTorchZip("archive", pickle, SampleStorages()); };
  ExpectError(zip_with(testing::PickleWriter().Proto(2).Op(']').Stop().bytes()), kInvalid,
              "data.pkl holds a list of 0, not a state dict");
  ExpectError(zip_with(testing::PickleWriter().Proto(2).Op('}').Int(1).Str("x").Op('s').Stop().bytes()), kInvalid,
              "state dict key int 1 is not a string");
  ExpectError(zip_with(testing::PickleWriter().Proto(2).Op('}').Str("step").Int(5).Op('s').Stop().bytes()), kInvalid,
              "tensor 'step' is a int 5; only dense tensors");
  ExpectError(zip_with(testing::PickleWriter()
                           .Proto(2)
                           .Op('}')
                           .Str("q")
                           .Global("torch._utils", "_rebuild_qtensor")
                           .Op(')')
                           .Op('R')
                           .Op('s')
                           .Stop()
                           .bytes()),
              kInvalid, "tensor 'q' is a call of torch._utils._rebuild_qtensor");
  ExpectError(zip_with(testing::PickleWriter()
                           .Proto(2)
                           .Op('}')
                           .Str("t")
                           .Global("torch._utils", "_rebuild_tensor_v2")
                           .Int(0)
                           .Op(0x85)
                           .Op('R')
                           .Op('s')
                           .Stop()
                           .bytes()),
              kLoss, "_rebuild_tensor_v2 with 1 arguments");
}

TEST(PytorchReaderTest, CorruptPickleNamesTheEntry) {
  std::string pickle = TorchStateDictPickle({{.name = "t", .key = "0", .storage_numel = 8, .size = {8}}});
  pickle.back() = static_cast<char>(0xFE);  // STOP becomes a byte that is no opcode
  const std::string bytes = BuildTorchZip("archive", pickle, SampleStorages());
  TempDir dir;
  auto checkpoint = ReadBytes(dir, bytes);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr("pytorch_model.bin:archive/data.pkl"));
}

TEST(PytorchReaderTest, DuplicateNameInStateDict) {
  const std::string pickle = TorchStateDictPickle({
      {.name = "t", .key = "0", .storage_numel = 8, .size = {8}},
      {.name = "t", .key = "0", .storage_numel = 8, .size = {8}},
  });
  ExpectError(BuildTorchZip("archive", pickle, SampleStorages()), kInvalid, "tensor 't' appears twice");
}

}  // namespace
}  // namespace supra

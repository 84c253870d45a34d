#include <bit>
#include <cstring>
#include <string>

#include "engine/checkpoint/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/checkpoint/test_files.h"

namespace supra {
namespace {

using testing::BuildSafetensors;
using testing::BuildSafetensorsRaw;
using ::testing::ElementsAre;
using testing::F32Bytes;
using ::testing::HasSubstr;
using testing::TempDir;

absl::StatusOr<Checkpoint> ReadBytes(const TempDir& dir, const std::string& bytes) {
  return ReadSafetensors(dir.Write("model.safetensors", bytes));
}

TEST(SafetensorsReaderTest, ReadsEveryDType) {
  TempDir dir;
  std::string i64;
  testing::PutLe(i64, static_cast<uint64_t>(-7), 8);
  std::string f64(8, '\0');
  const double d = 0.25;
  std::memcpy(f64.data(), &d, 8);
  const std::string bytes = BuildSafetensors({
      {"a.f32", "F32", {2, 2}, F32Bytes({1, 2, 3, 4})},
      {"b.bf16", "BF16", {3}, testing::U16Bytes({0x3F80, 0x4000, 0xC040})},
      {"c.f16", "F16", {1, 1}, testing::U16Bytes({0x3C00})},
      {"d.f64", "F64", {1}, f64},
      {"e.i32", "I32", {}, std::string("\x05\0\0\0", 4)},
      {"f.i64", "I64", {1}, i64},
      {"g.empty", "F32", {0, 5}, ""},
  });
  auto checkpoint = ReadBytes(dir, bytes);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(checkpoint->format(), "safetensors");
  ASSERT_EQ(checkpoint->tensors().size(), 7u);

  const TensorView* a = checkpoint->Find("a.f32");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::kF32);
  EXPECT_THAT(a->shape, ElementsAre(2, 2));
  EXPECT_EQ(a->nbytes, 16u);
  EXPECT_EQ(a->numel(), 4);
  float values[4];
  ASSERT_TRUE(ConvertToFloat32(a->dtype, a->data, 4, values));
  EXPECT_THAT(values, ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(a->source, HasSubstr("model.safetensors"));

  const TensorView* b = checkpoint->Find("b.bf16");
  ASSERT_TRUE(ConvertToFloat32(b->dtype, b->data, 3, values));
  EXPECT_EQ(b->dtype, DType::kBF16);
  EXPECT_THAT(std::vector<float>(values, values + 3), ElementsAre(1, 2, -3));
  EXPECT_EQ(checkpoint->Find("c.f16")->dtype, DType::kF16);
  EXPECT_EQ(checkpoint->Find("d.f64")->dtype, DType::kF64);
  EXPECT_TRUE(checkpoint->Find("e.i32")->shape.empty());
  EXPECT_EQ(checkpoint->Find("e.i32")->numel(), 1);
  int64_t v;
  std::memcpy(&v, checkpoint->Find("f.i64")->data, 8);
  EXPECT_EQ(v, -7);
  EXPECT_EQ(checkpoint->Find("g.empty")->nbytes, 0u);
  EXPECT_EQ(checkpoint->Find("__metadata__"), nullptr);
}

TEST(SafetensorsReaderTest, TensorsOutliveTheCheckpointObjectThatMovedAway) {
  TempDir dir;
  auto checkpoint = ReadBytes(dir, BuildSafetensors({{"x", "F32", {1}, F32Bytes({42})}}));
  ASSERT_TRUE(checkpoint.ok());
  Checkpoint moved = *std::move(checkpoint);
  float x;
  std::memcpy(&x, moved.Find("x")->data, 4);
  EXPECT_EQ(x, 42);
}

void ExpectError(const std::string& bytes, absl::StatusCode code, const std::string& needle) {
  TempDir dir;
  auto checkpoint = ReadBytes(dir, bytes);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_EQ(checkpoint.status().code(), code) << checkpoint.status();
  EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr(needle));
  EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr("model.safetensors"));
}

constexpr auto kLoss = absl::StatusCode::kDataLoss;

TEST(SafetensorsReaderTest, TooSmall) {
  ExpectError("", kLoss, "too small");
  ExpectError("1234567", kLoss, "too small");
}

TEST(SafetensorsReaderTest, HeaderLengthHuge) {
  std::string bytes = BuildSafetensors({{"x", "F32", {1}, F32Bytes({1})}});
  testing::PatchLe(bytes, 0, uint64_t{1} << 40, 8);
  ExpectError(bytes, kLoss, "exceeds the 100 MB limit");
  testing::PatchLe(bytes, 0, ~uint64_t{0}, 8);
  ExpectError(bytes, kLoss, "exceeds the 100 MB limit");
  testing::PatchLe(bytes, 0, bytes.size() - 7, 8);
  ExpectError(bytes, kLoss, "exceeds the file");
}

TEST(SafetensorsReaderTest, HeaderNotJson) {
  ExpectError(BuildSafetensorsRaw("{\"x\": {", ""), kLoss, "not valid JSON");
  ExpectError(BuildSafetensorsRaw("", ""), kLoss, "not valid JSON");
  ExpectError(BuildSafetensorsRaw("[1, 2]", ""), kLoss, "not a JSON object");
}

TEST(SafetensorsReaderTest, MalformedEntries) {
  const std::string data = F32Bytes({1, 2});
  ExpectError(BuildSafetensorsRaw(R"({"x": 3})", data), kLoss, "tensor 'x': entry is not a JSON object");
  ExpectError(BuildSafetensorsRaw(R"({"x": {"shape": [2], "data_offsets": [0, 8]}})", data), kLoss, "\"dtype\"");
  ExpectError(BuildSafetensorsRaw(R"({"x": {"dtype": "F32", "data_offsets": [0, 8]}})", data), kLoss, "\"shape\"");
  ExpectError(BuildSafetensorsRaw(R"({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", data), kLoss,
              "\"shape\"");
  ExpectError(BuildSafetensorsRaw(R"({"x": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}})", data), kLoss,
              "\"shape\"");
  ExpectError(BuildSafetensorsRaw(R"({"x": {"dtype": "F32", "shape": [2]}})", data), kLoss, "\"data_offsets\"");
  ExpectError(BuildSafetensorsRaw(R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", data), kLoss,
              "\"data_offsets\"");
}

TEST(SafetensorsReaderTest, UnknownDTypeIsUnsupported) {
  const std::string data = F32Bytes({1, 2});
  for (const char* dtype : {"F8_E4M3", "BOOL", "U8", "Q4", ""}) {
    const std::string header =
        std::string(R"({"x": {"dtype": ")") + dtype + R"(", "shape": [8], "data_offsets": [0, 8]}})";
    ExpectError(BuildSafetensorsRaw(header, data), absl::StatusCode::kInvalidArgument,
                std::string("tensor 'x': unsupported dtype '") + dtype + "'");
  }
}

TEST(SafetensorsReaderTest, DataOffsetsChecked) {
  const std::string data = F32Bytes({1, 2});
  ExpectError(BuildSafetensorsRaw(R"({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}})", data), kLoss,
              "lie outside the 8 bytes of data");
  ExpectError(BuildSafetensorsRaw(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", data), kLoss,
              "data_offsets [8, 4)");
  ExpectError(
      BuildSafetensorsRaw(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551615, 4]}})", data),
      kLoss, "lie outside");
  ExpectError(BuildSafetensorsRaw(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}})", data), kLoss,
              "span 8 bytes, but the shape needs 1 elements of float32");
  ExpectError(BuildSafetensorsRaw(R"({"x": {"dtype": "F16", "shape": [3], "data_offsets": [0, 8]}})", data), kLoss,
              "span 8 bytes");
}

TEST(SafetensorsReaderTest, ElementCountOverflow) {
  ExpectError(BuildSafetensorsRaw(
                  R"({"x": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 0]}})", ""),
              kLoss, "element count overflows");
  // numel fits in 64 bits, numel * 4 does not.
  ExpectError(
      BuildSafetensorsRaw(R"({"x": {"dtype": "F32", "shape": [4611686018427387904, 2], "data_offsets": [0, 0]}})", ""),
      kLoss, "the shape needs");
}

TEST(SafetensorsReaderTest, EveryTruncationIsAnError) {
  const std::string bytes = BuildSafetensors(
      {{"a", "F32", {2, 3}, F32Bytes({1, 2, 3, 4, 5, 6})}, {"b", "BF16", {2}, testing::U16Bytes({1, 2})}});
  TempDir dir;
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    auto checkpoint = ReadBytes(dir, bytes.substr(0, cut));
    ASSERT_FALSE(checkpoint.ok()) << cut;
    EXPECT_EQ(checkpoint.status().code(), kLoss) << cut << ": " << checkpoint.status();
  }
}

}  // namespace
}  // namespace supra

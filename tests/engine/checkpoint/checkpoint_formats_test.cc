// The committed format family (tests/data/models/fmt_*): one set of weights in
// every supported layout. Each must read back to the same tensors as the float32
// safetensors reference, and every truncated or damaged copy must fail cleanly.
#include <bit>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/checkpoint/test_files.h"

namespace supra {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using testing::ModelDir;
using testing::TempDir;

Checkpoint OpenOrDie(const std::string& model) {
  auto checkpoint = OpenCheckpoint(ModelDir(model));
  EXPECT_TRUE(checkpoint.ok()) << model << ": " << checkpoint.status();
  return checkpoint.ok() ? *std::move(checkpoint) : Checkpoint();
}

std::vector<uint32_t> F32Bits(const TensorView& view) {
  std::vector<uint32_t> out(static_cast<size_t>(view.numel()));
  std::memcpy(out.data(), view.data, view.nbytes);
  return out;
}

std::vector<uint16_t> U16Bits(const TensorView& view) {
  std::vector<uint16_t> out(static_cast<size_t>(view.numel()));
  std::memcpy(out.data(), view.data, view.nbytes);
  return out;
}

struct FormatCase {
  std::string model;
  DType dtype;
  std::string format;  // a substring of Checkpoint::format()
};

class FormatRoundTripTest : public ::testing::TestWithParam<FormatCase> {};

TEST_P(FormatRoundTripTest, SameTensorsAsTheFloat32Reference) {
  const FormatCase& c = GetParam();
  const Checkpoint reference = OpenOrDie("fmt_st_f32");
  const Checkpoint checkpoint = OpenOrDie(c.model);
  ASSERT_FALSE(reference.tensors().empty());
  EXPECT_THAT(checkpoint.format(), HasSubstr(c.format));
  ASSERT_EQ(checkpoint.tensors().size(), reference.tensors().size());
  for (const auto& [name, ref] : reference.tensors()) {
    SCOPED_TRACE(name);
    const TensorView* view = checkpoint.Find(name);
    ASSERT_NE(view, nullptr);
    ASSERT_EQ(view->dtype, c.dtype);
    ASSERT_EQ(view->shape, ref.shape);
    ASSERT_EQ(view->nbytes, static_cast<size_t>(ref.numel()) * DTypeSize(c.dtype));
    const std::vector<uint32_t> expected = F32Bits(ref);
    if (c.dtype == DType::kF32) {
      EXPECT_EQ(F32Bits(*view), expected);
      continue;
    }
    std::vector<uint16_t> rounded;
    for (uint32_t bits : expected) {
      const float value = std::bit_cast<float>(bits);
      rounded.push_back(c.dtype == DType::kBF16 ? FloatToBF16(value) : FloatToHalf(value));
    }
    EXPECT_EQ(U16Bits(*view), rounded);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, FormatRoundTripTest,
    ::testing::Values(FormatCase{"fmt_st_f32", DType::kF32, "safetensors, model.safetensors"},
                      FormatCase{"fmt_st_bf16", DType::kBF16, "safetensors, model.safetensors"},
                      FormatCase{"fmt_st_f16", DType::kF16, "safetensors, model.safetensors"},
                      FormatCase{"fmt_st_sharded", DType::kF32, "safetensors, 3 shards (model.safetensors.index.json)"},
                      FormatCase{"fmt_pt_f32", DType::kF32, "pytorch zip, pytorch_model.bin"},
                      FormatCase{"fmt_pt_bf16", DType::kBF16, "pytorch zip, pytorch_model.bin"},
                      FormatCase{"fmt_pt_f16", DType::kF16, "pytorch zip, pytorch_model.bin"},
                      FormatCase{"fmt_pt_sharded", DType::kF32, "pytorch zip, 3 shards (pytorch_model.bin.index.json)"},
                      FormatCase{"fmt_pt_zip64", DType::kF32, "pytorch zip (zip64), pytorch_model.bin"}),
    [](const ::testing::TestParamInfo<FormatCase>& case_info) { return case_info.param.model; });

TEST(CheckpointFormatsTest, OnlyTheZip64FileIsRecognisedAsZip64) {
  EXPECT_THAT(OpenOrDie("fmt_pt_zip64").format(), HasSubstr("zip64"));
  EXPECT_THAT(OpenOrDie("fmt_pt_f32").format(), ::testing::Not(HasSubstr("zip64")));
}

TEST(CheckpointFormatsTest, TiedWeightsShareOneStorage) {
  const Checkpoint checkpoint = OpenOrDie("tied");
  const TensorView* embedding = checkpoint.Find("model.tok_embeddings.weight");
  const TensorView* output = checkpoint.Find("model.output.weight");
  ASSERT_NE(embedding, nullptr);
  ASSERT_NE(output, nullptr);
  EXPECT_EQ(embedding->data, output->data);
  EXPECT_EQ(embedding->nbytes, output->nbytes);
  EXPECT_EQ(embedding->shape, output->shape);
  EXPECT_EQ(embedding->source, output->source);
  // Every other tensor has its own bytes.
  for (const auto& [name, view] : checkpoint.tensors()) {
    if (&view == embedding || &view == output) continue;
    EXPECT_NE(view.data, embedding->data) << name;
  }
}

TEST(CheckpointFormatsTest, EveryCommittedModelOpens) {
  for (const auto& entry : std::filesystem::directory_iterator(SUPRA_TEST_DATA_DIR "/models")) {
    auto checkpoint = OpenCheckpoint(entry.path().string());
    EXPECT_TRUE(checkpoint.ok()) << entry.path() << ": " << checkpoint.status();
  }
}

// ---- damaged copies of the committed files -----------------------------------

// The weights files of a model directory, by name.
std::vector<std::string> WeightFiles(const std::string& model) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(ModelDir(model))) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".safetensors") || name.ends_with(".bin") || name.ends_with(".index.json")) {
      names.push_back(name);
    }
  }
  return names;
}

// Copies `model`'s weights into a temp dir with `file` replaced by `bytes`, opens it.
absl::Status OpenDamaged(const std::string& model, const std::string& file, const std::string& bytes) {
  TempDir dir;
  for (const std::string& name : WeightFiles(model)) {
    testing::WriteFile(dir.File(name), name == file ? bytes : testing::ReadFile(ModelDir(model) + "/" + name));
  }
  auto checkpoint = OpenCheckpoint(dir.path());
  if (!checkpoint.ok()) return checkpoint.status();
  // Touch every byte of every tensor: a view outside its mapping would fault here.
  std::vector<float> scratch;
  for (const auto& [name, view] : checkpoint->tensors()) {
    scratch.resize(static_cast<size_t>(view.numel()));
    EXPECT_EQ(view.nbytes, scratch.size() * DTypeSize(view.dtype)) << name;
    ConvertToFloat32(view.dtype, view.data, scratch.size(), scratch.data());
  }
  return absl::OkStatus();
}

// Cut points: every 1/16 of the file, the first and last bytes, and a window
// around each structural landmark (zip signatures; the safetensors header end).
std::vector<size_t> CutPoints(const std::string& bytes) {
  std::vector<size_t> cuts = {0, 1, 4, 7, 8, 9, 21, 22, 23};
  for (int k = 1; k < 16; ++k) cuts.push_back(bytes.size() * k / 16);
  for (size_t back : {1, 2, 20, 22, 23, 42, 60, 98}) {
    if (back <= bytes.size()) cuts.push_back(bytes.size() - back);
  }
  for (const char* magic : {"PK\x03\x04", "PK\x01\x02", "PK\x06\x06", "PK\x06\x07", "PK\x05\x06"}) {
    for (size_t pos = bytes.find(magic); pos != std::string::npos; pos = bytes.find(magic, pos + 1)) {
      for (size_t delta : {0, 3, 10, 30, 46}) cuts.push_back(pos + delta);
    }
  }
  if (bytes.size() >= 8) {
    uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    if (header < bytes.size()) {
      for (size_t delta : {0, 1, 5, 8, 9, 12}) cuts.push_back(8 + header - 5 + delta);
    }
  }
  std::vector<size_t> valid;
  for (size_t cut : cuts) {
    if (cut < bytes.size()) valid.push_back(cut);
  }
  return valid;
}

class DamagedFileTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DamagedFileTest, EveryTruncationIsAnError) {
  const std::string model = GetParam();
  for (const std::string& file : WeightFiles(model)) {
    const std::string bytes = testing::ReadFile(ModelDir(model) + "/" + file);
    for (size_t cut : CutPoints(bytes)) {
      // Cutting only the trailing newline of a JSON index leaves it intact.
      if (bytes.find_first_not_of(" \n\r\t", cut) == std::string::npos) continue;
      const absl::Status status = OpenDamaged(model, file, bytes.substr(0, cut));
      ASSERT_FALSE(status.ok()) << file << " cut at " << cut;
      EXPECT_THAT(status.code(), AnyOf(absl::StatusCode::kDataLoss, absl::StatusCode::kInvalidArgument))
          << file << " cut at " << cut << ": " << status;
      EXPECT_THAT(std::string(status.message()), HasSubstr(file)) << status;
    }
  }
}

// Random byte damage anywhere (headers included) may go unnoticed in tensor data
// but must never crash or yield a view outside the file.
TEST_P(DamagedFileTest, RandomByteDamageNeverCrashes) {
  const std::string model = GetParam();
  std::mt19937 rng(2024);
  for (const std::string& file : WeightFiles(model)) {
    const std::string bytes = testing::ReadFile(ModelDir(model) + "/" + file);
    std::vector<size_t> targets = CutPoints(bytes);
    for (int i = 0; i < 40; ++i) targets.push_back(rng() % bytes.size());
    for (size_t target : targets) {
      std::string damaged = bytes;
      for (size_t k = target; k < target + 4 && k < damaged.size(); ++k) damaged[k] = static_cast<char>(rng());
      const absl::Status status = OpenDamaged(model, file, damaged);
      if (!status.ok()) {
        EXPECT_THAT(status.code(),
                    AnyOf(absl::StatusCode::kDataLoss, absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound))
            << file << " damaged at " << target << ": " << status;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, DamagedFileTest,
                         ::testing::Values("fmt_st_f32", "fmt_st_sharded", "fmt_pt_f32", "fmt_pt_bf16",
                                           "fmt_pt_sharded", "fmt_pt_zip64", "tied"));

}  // namespace
}  // namespace supra

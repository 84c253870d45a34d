// OpenCheckpoint: picking the format from a model directory, and sharded
// checkpoints (index + shards), on small files written by the test.
#include <unistd.h>

#include <string>

#include "engine/checkpoint/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/checkpoint/test_files.h"

namespace supra {
namespace {

using testing::BuildSafetensors;
using testing::F32Bytes;
using ::testing::HasSubstr;
using testing::TempDir;

std::string OneTensorSafetensors(const std::string& name, float value) {
  return BuildSafetensors({{name, "F32", {1}, F32Bytes({value})}});
}

std::string OneTensorTorch(const std::string& name, float value) {
  return testing::BuildTorchZip(
      "archive", testing::TorchStateDictPickle({{.name = name, .key = "0", .storage_numel = 1, .size = {1}}}),
      {{"0", F32Bytes({value})}});
}

float Value(const Checkpoint& checkpoint, const std::string& name) {
  const TensorView* view = checkpoint.Find(name);
  if (view == nullptr || view->nbytes != 4) return -1;
  float value;
  std::memcpy(&value, view->data, 4);
  return value;
}

constexpr char kLookedFor[] =
    "model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json";

TEST(OpenCheckpointTest, MissingDirectoryIsNotFound) {
  TempDir dir;
  auto checkpoint = OpenCheckpoint(dir.File("nope"));
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr("nope"));
  EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr(kLookedFor));
}

TEST(OpenCheckpointTest, DirectoryWithoutWeightsIsNotFound) {
  TempDir dir;
  dir.Write("config.json", "{}");
  dir.Write("model.bin", "not the name we look for");
  auto checkpoint = OpenCheckpoint(dir.path());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr(kLookedFor));
}

TEST(OpenCheckpointTest, SingleFiles) {
  {
    TempDir dir;
    dir.Write("model.safetensors", OneTensorSafetensors("w", 1.5f));
    auto checkpoint = OpenCheckpoint(dir.path());
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    EXPECT_EQ(checkpoint->format(), "safetensors, model.safetensors");
    EXPECT_EQ(Value(*checkpoint, "w"), 1.5f);
  }
  {
    TempDir dir;
    dir.Write("pytorch_model.bin", OneTensorTorch("w", 2.5f));
    auto checkpoint = OpenCheckpoint(dir.path());
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    EXPECT_EQ(checkpoint->format(), "pytorch zip, pytorch_model.bin");
    EXPECT_EQ(Value(*checkpoint, "w"), 2.5f);
  }
}

TEST(OpenCheckpointTest, PrefersSafetensorsAndSaysWhatItIgnored) {
  TempDir dir;
  dir.Write("pytorch_model.bin", OneTensorTorch("w", 2.0f));
  dir.Write("model.safetensors", OneTensorSafetensors("w", 1.0f));
  auto checkpoint = OpenCheckpoint(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(Value(*checkpoint, "w"), 1.0f);
  EXPECT_EQ(checkpoint->format(), "safetensors, model.safetensors (ignored: pytorch_model.bin)");
}

TEST(OpenCheckpointTest, FollowsSymlinksAsInAHubCache) {
  TempDir blobs;
  TempDir dir;
  const std::string blob = blobs.Write("3f2a9c", OneTensorSafetensors("w", 4.0f));
  ASSERT_EQ(::symlink(blob.c_str(), dir.File("model.safetensors").c_str()), 0);
  auto checkpoint = OpenCheckpoint(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(Value(*checkpoint, "w"), 4.0f);
}

// ---- sharded ---------------------------------------------------------------

// Two safetensors shards: a.* in shard 1, b in shard 2.
void WriteShardedSafetensors(const TempDir& dir, const std::string& index) {
  dir.Write("model-00001-of-00002.safetensors",
            BuildSafetensors({{"a.x", "F32", {1}, F32Bytes({1})}, {"a.y", "F32", {1}, F32Bytes({2})}}));
  dir.Write("model-00002-of-00002.safetensors", OneTensorSafetensors("b", 3));
  dir.Write("model.safetensors.index.json", index);
}

constexpr char kGoodIndex[] = R"({"metadata": {"total_size": 12}, "weight_map": {
    "a.x": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors",
    "a.y": "model-00001-of-00002.safetensors"}})";

TEST(ShardedCheckpointTest, SafetensorsShards) {
  TempDir dir;
  WriteShardedSafetensors(dir, kGoodIndex);
  auto checkpoint = OpenCheckpoint(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(checkpoint->format(), "safetensors, 2 shards (model.safetensors.index.json)");
  EXPECT_EQ(Value(*checkpoint, "a.x"), 1);
  EXPECT_EQ(Value(*checkpoint, "a.y"), 2);
  EXPECT_EQ(Value(*checkpoint, "b"), 3);
  EXPECT_THAT(checkpoint->Find("b")->source, HasSubstr("model-00002-of-00002.safetensors"));
}

TEST(ShardedCheckpointTest, PytorchShardsWithZip64) {
  TempDir dir;
  dir.Write("pytorch_model-00001-of-00002.bin", OneTensorTorch("a", 1));
  const std::string zip64 = testing::BuildTorchZip(
      "pytorch_model-00002-of-00002",
      testing::TorchStateDictPickle({{.name = "b", .key = "0", .storage_numel = 1, .size = {1}}}),
      {{"0", F32Bytes({2})}}, {.zip64 = true});
  dir.Write("pytorch_model-00002-of-00002.bin", zip64);
  dir.Write("pytorch_model.bin.index.json",
            R"({"weight_map": {"a": "pytorch_model-00001-of-00002.bin", "b": "pytorch_model-00002-of-00002.bin"}})");
  auto checkpoint = OpenCheckpoint(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(checkpoint->format(), "pytorch zip (zip64), 2 shards (pytorch_model.bin.index.json)");
  EXPECT_EQ(Value(*checkpoint, "a"), 1);
  EXPECT_EQ(Value(*checkpoint, "b"), 2);
}

void ExpectIndexError(const std::string& index, absl::StatusCode code, const std::string& needle) {
  TempDir dir;
  WriteShardedSafetensors(dir, index);
  auto checkpoint = OpenCheckpoint(dir.path());
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_EQ(checkpoint.status().code(), code) << checkpoint.status();
  EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr(needle));
}

TEST(ShardedCheckpointTest, MissingShard) {
  ExpectIndexError(R"({"weight_map": {"a.x": "model-00001-of-00002.safetensors", "a.y":
      "model-00001-of-00002.safetensors", "b": "model-00009-of-00009.safetensors"}})",
                   absl::StatusCode::kNotFound, "shard 'model-00009-of-00009.safetensors' named by");
}

TEST(ShardedCheckpointTest, TensorMissingFromItsShard) {
  ExpectIndexError(R"({"weight_map": {"a.x": "model-00001-of-00002.safetensors", "a.y":
      "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors",
      "c": "model-00002-of-00002.safetensors"}})",
                   absl::StatusCode::kDataLoss,
                   "model.safetensors.index.json: tensor 'c' is not in its shard 'model-00002-of-00002.safetensors'");
}

TEST(ShardedCheckpointTest, ShardTensorNotInTheMap) {
  ExpectIndexError(R"({"weight_map": {"a.x": "model-00001-of-00002.safetensors",
      "b": "model-00002-of-00002.safetensors"}})",
                   absl::StatusCode::kDataLoss,
                   "model-00001-of-00002.safetensors: tensor 'a.y' is not listed for this shard in the weight_map");
}

TEST(ShardedCheckpointTest, TensorMappedToTheWrongShard) {
  ExpectIndexError(R"({"weight_map": {"a.x": "model-00001-of-00002.safetensors",
      "a.y": "model-00002-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})",
                   absl::StatusCode::kDataLoss, "tensor 'a.y' is not listed for this shard");
}

TEST(ShardedCheckpointTest, ShardPathsMustBePlainNames) {
  for (const char* shard :
       {"../model-00002-of-00002.safetensors", "..", ".", "sub/model.safetensors", "/etc/passwd", ""}) {
    const std::string index =
        std::string(R"({"weight_map": {"a.x": "model-00001-of-00002.safetensors", "b": ")") + shard + "\"}}";
    ExpectIndexError(index, absl::StatusCode::kInvalidArgument, "not a plain file name");
  }
}

TEST(ShardedCheckpointTest, MalformedIndex) {
  const auto kLoss = absl::StatusCode::kDataLoss;
  ExpectIndexError("{\"weight_map\": {", kLoss, "model.safetensors.index.json: not valid JSON");
  ExpectIndexError("", kLoss, "not valid JSON");
  ExpectIndexError(R"({"metadata": {}})", kLoss, "no \"weight_map\" object");
  ExpectIndexError(R"([1])", kLoss, "no \"weight_map\" object");
  ExpectIndexError(R"({"weight_map": []})", kLoss, "no \"weight_map\" object");
  ExpectIndexError(R"({"weight_map": {}})", kLoss, "\"weight_map\" is empty");
  ExpectIndexError(R"({"weight_map": {"a.x": 3}})", kLoss, "tensor 'a.x' maps to a non-string");
}

TEST(ShardedCheckpointTest, CorruptShardIsNamed) {
  TempDir dir;
  WriteShardedSafetensors(dir, kGoodIndex);
  dir.Write("model-00002-of-00002.safetensors", "garbage!garbage!");
  auto checkpoint = OpenCheckpoint(dir.path());
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr("model-00002-of-00002.safetensors"));
}

}  // namespace
}  // namespace supra

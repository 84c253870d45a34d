// End-to-end tests of a model directory: Model::Load (config, tokenizer,
// checkpoint, backend) and the generation loop against the NumPy goldens.
#include "engine/runtime/model.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "engine/runtime/generate.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace supra {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kData = SUPRA_TEST_DATA_DIR;

std::vector<int32_t> ReadI32(const Checkpoint& golden, const std::string& name) {
  const TensorView* t = golden.Find(name);
  EXPECT_NE(t, nullptr) << name;
  if (t == nullptr) return {};
  EXPECT_EQ(t->dtype, DType::kI32);
  std::vector<int32_t> out(t->numel());
  std::memcpy(out.data(), t->data, t->nbytes);
  return out;
}

std::unique_ptr<Model> LoadOrDie(const std::string& dir) {
  ModelOptions options;
  options.dir = dir;
  options.cpu.num_slots = 2;
  options.cpu.num_threads = 2;
  auto model = Model::Load(options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

class GoldenGreedyTest : public ::testing::TestWithParam<std::string> {};

// Greedy continuation through the whole stack equals the float64 reference's.
TEST_P(GoldenGreedyTest, MatchesReference) {
  auto model = LoadOrDie(kData + "/models/" + GetParam());
  ASSERT_NE(model, nullptr);
  auto golden = ReadSafetensors(kData + "/golden/" + GetParam() + ".safetensors");
  ASSERT_TRUE(golden.ok()) << golden.status();
  const std::vector<int32_t> prompt = ReadI32(*golden, "tokens");
  const std::vector<int32_t> expected = ReadI32(*golden, "greedy_tokens");

  for (int chunk : {1, 7, 256}) {
    ASSERT_TRUE(model->backend().ResetSlot(1).ok());
    GenerateOptions options;
    options.sampling.temperature = 0;
    options.max_tokens = static_cast<int32_t>(expected.size());
    options.stop_at_eos = false;
    options.prefill_chunk = chunk;
    std::vector<int32_t> history, sampled;
    ASSERT_TRUE(GenerateOnSlot(*model, 1, prompt, 0, options, history, [&](int32_t t, absl::Span<const float>) {
                  sampled.push_back(t);
                  return true;
                }).ok());
    EXPECT_EQ(sampled, expected) << "chunk " << chunk;
    EXPECT_EQ(history.size(), prompt.size() + expected.size());
  }
}

INSTANTIATE_TEST_SUITE_P(AllModels, GoldenGreedyTest,
                         ::testing::Values("mha", "gqa", "gqa_qknorm", "h6", "decay_start", "tied", "tied_single",
                                           "nodecay", "h32", "fmt_st_f32"));

TEST(ModelTest, ReportsIdsFormatAndStateSize) {
  auto model = LoadOrDie(kData + "/models/gqa");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->bos_id(), 1);
  EXPECT_EQ(model->eos_id(), 2);
  EXPECT_EQ(model->config().vocab_size, 512);
  EXPECT_EQ(model->state_bytes(), 2 * 4 * 8 * 12 * 4);
  EXPECT_THAT(model->weights_format(), HasSubstr("safetensors"));
  EXPECT_EQ(model->fingerprint().size(), 16u);
}

TEST(ModelTest, FingerprintIsStableAndDistinguishesModels) {
  std::set<std::string> prints;
  for (const char* name : {"fmt_st_f32", "fmt_st_bf16", "fmt_pt_f32", "mha", "tied"}) {
    auto a = LoadOrDie(kData + "/models/" + name);
    auto b = LoadOrDie(kData + "/models/" + name);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(a->fingerprint(), b->fingerprint()) << name;
    prints.insert(a->fingerprint());
  }
  // fmt_st_f32 and fmt_pt_f32 hold the same numbers in another container: the
  // fingerprint describes the tensors, so they may agree; the others differ.
  EXPECT_GE(prints.size(), 4u);
}

// A writable copy of a model directory for the failure tests.
class BrokenModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("broken_model_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::copy(kData + "/models/gqa", dir_, fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& file, const std::string& text) {
    std::ofstream(dir_ / file, std::ios::binary | std::ios::trunc) << text;
  }
  std::string Read(const std::string& file) {
    std::ifstream in(dir_ / file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  absl::Status Load(const std::string& backend = "cpu") {
    ModelOptions options;
    options.dir = dir_.string();
    options.backend = backend;
    options.cpu.num_slots = 1;
    return Model::Load(options).status();
  }
  // Replaces the first occurrence of `from` in config.json.
  void PatchConfig(const std::string& from, const std::string& to) {
    std::string text = Read("config.json");
    const size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    Write("config.json", text);
  }

  fs::path dir_;
};

TEST_F(BrokenModelTest, CopyLoads) { EXPECT_TRUE(Load().ok()) << Load(); }

TEST_F(BrokenModelTest, MissingDirectory) {
  fs::remove_all(dir_);
  EXPECT_EQ(Load().code(), absl::StatusCode::kNotFound);
}

TEST_F(BrokenModelTest, MissingConfig) {
  fs::remove(dir_ / "config.json");
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("config.json"));
}

TEST_F(BrokenModelTest, UnsupportedConfigValueNamesFieldAndFile) {
  PatchConfig("\"rms_norm\"", "\"layer_norm\"");
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("config.json"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("norm_type"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("layer_norm"));
}

TEST_F(BrokenModelTest, ConfigThatDoesNotMatchTheWeights) {
  PatchConfig("\"intermediate_dim_ffn\": 80", "\"intermediate_dim_ffn\": 96");
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("model.layers.0.feed_forward.w12.weight is [160, 32]"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("model.layers.1.feed_forward.w3.weight is [32, 80]"));
}

TEST_F(BrokenModelTest, TokenizerLargerThanVocab) {
  PatchConfig("\"vocab_size\": 512", "\"vocab_size\": 500");
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tokenizer.model"));
}

TEST_F(BrokenModelTest, MissingTokenizer) {
  fs::remove(dir_ / "tokenizer.model");
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tokenizer.model"));
}

TEST_F(BrokenModelTest, CorruptTokenizer) {
  Write("tokenizer.model", "this is not a sentencepiece model");
  EXPECT_FALSE(Load().ok());
}

TEST_F(BrokenModelTest, EosOutsideVocabulary) {
  Write("generation_config.json", R"({"bos_token_id": 1, "eos_token_id": 4096})");
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("eos token id 4096"));
}

TEST_F(BrokenModelTest, GenerationConfigIsOptional) {
  fs::remove(dir_ / "generation_config.json");
  EXPECT_TRUE(Load().ok());
}

TEST_F(BrokenModelTest, NoWeights) {
  fs::remove(dir_ / "model.safetensors");
  EXPECT_EQ(Load().code(), absl::StatusCode::kNotFound);
}

TEST_F(BrokenModelTest, TruncatedWeights) {
  const std::string bytes = Read("model.safetensors");
  Write("model.safetensors", bytes.substr(0, bytes.size() / 2));
  const absl::Status s = Load();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("model.safetensors"));
}

TEST_F(BrokenModelTest, UnknownBackend) {
  const absl::Status s = Load("tpu");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tpu"));
}

// The CUDA backend through the same loader: without a GPU (or without CUDA in
// the build) a clear error; with one, a model that generates.
TEST(ModelTest, CudaBackend) {
  ModelOptions options;
  options.dir = kData + "/models/gqa";
  options.backend = "cuda";
  options.cuda.num_slots = 2;
  auto model = Model::Load(options);
  if (!CudaDeviceAvailable()) {
    ASSERT_FALSE(model.ok());
    EXPECT_TRUE(model.status().code() == absl::StatusCode::kUnavailable ||
                model.status().code() == absl::StatusCode::kUnimplemented)
        << model.status();
    return;
  }
  ASSERT_TRUE(model.ok()) << model.status();
  GenerateOptions generate;
  generate.sampling.temperature = 0;
  generate.max_tokens = 8;
  generate.stop_at_eos = false;
  std::vector<int32_t> history, sampled;
  const std::vector<int32_t> prompt = {1, 70, 80, 90};
  ASSERT_TRUE(GenerateOnSlot(**model, 0, prompt, 0, generate, history, [&](int32_t t, absl::Span<const float>) {
                sampled.push_back(t);
                return true;
              }).ok());
  EXPECT_EQ(sampled.size(), 8u);
}

TEST(GenerateTest, BadArgumentsAreErrors) {
  auto model = LoadOrDie(kData + "/models/mha");
  ASSERT_NE(model, nullptr);
  std::vector<int32_t> history;
  auto ignore = [](int32_t, absl::Span<const float>) { return true; };
  GenerateOptions options;
  EXPECT_EQ(GenerateOnSlot(*model, 0, {}, 0, options, history, ignore).code(), absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> prompt = {1, 700};  // 700 is outside the vocabulary of 512
  EXPECT_EQ(GenerateOnSlot(*model, 0, prompt, 0, options, history, ignore).code(),
            absl::StatusCode::kInvalidArgument);
  options.sampling.top_p = 1.5f;
  const std::vector<int32_t> good = {1, 70};
  EXPECT_EQ(GenerateOnSlot(*model, 0, good, 0, options, history, ignore).code(), absl::StatusCode::kInvalidArgument);
  options.sampling.top_p = 1.0f;
  EXPECT_EQ(GenerateOnSlot(*model, 5, good, 0, options, history, ignore).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BrokenModelTest, GreedyStopsAtEosUnlessIgnored) {
  // Declare the reference's third greedy token to be EOS: generation must end there.
  auto golden = ReadSafetensors(kData + "/golden/gqa.safetensors");
  ASSERT_TRUE(golden.ok()) << golden.status();
  const std::vector<int32_t> prompt = ReadI32(*golden, "tokens");
  const std::vector<int32_t> expected = ReadI32(*golden, "greedy_tokens");
  Write("generation_config.json", "{\"bos_token_id\": 1, \"eos_token_id\": " + std::to_string(expected[2]) + "}");
  for (bool stop_at_eos : {true, false}) {
    auto model = LoadOrDie(dir_.string());
    ASSERT_NE(model, nullptr);
    GenerateOptions options;
    options.sampling.temperature = 0;
    options.max_tokens = 16;
    options.stop_at_eos = stop_at_eos;
    std::vector<int32_t> history, sampled;
    ASSERT_TRUE(GenerateOnSlot(*model, 0, prompt, 0, options, history, [&](int32_t t, absl::Span<const float>) {
                  sampled.push_back(t);
                  return true;
                }).ok());
    const size_t first_eos = std::find(expected.begin(), expected.end(), expected[2]) - expected.begin();
    EXPECT_EQ(sampled.size(), stop_at_eos ? first_eos + 1 : 16u);
    EXPECT_EQ(sampled, std::vector<int32_t>(expected.begin(), expected.begin() + sampled.size()));
  }
}

TEST(GenerateTest, CallbackCanStop) {
  auto model = LoadOrDie(kData + "/models/mha");
  ASSERT_NE(model, nullptr);
  GenerateOptions options;
  options.max_tokens = 10;
  std::vector<int32_t> history, sampled;
  const std::vector<int32_t> prompt = {1, 70, 80};
  ASSERT_TRUE(GenerateOnSlot(*model, 0, prompt, 0, options, history, [&](int32_t t, absl::Span<const float>) {
                sampled.push_back(t);
                return sampled.size() < 2;
              }).ok());
  EXPECT_EQ(sampled.size(), 2u);
  EXPECT_EQ(history.size(), prompt.size() + 2);
}

}  // namespace
}  // namespace supra

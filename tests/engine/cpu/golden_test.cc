// The CPU backend against the independent float64 NumPy reference
// (tools/testdata/supra_reference.py) on the tiny models in tests/data: every
// position's logits, the carried state, a greedy continuation, positions
// just below 2^31, and an 800-token prompt on 32 heads.
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/model/config.h"
#include "gtest/gtest.h"
#include "tests/engine/cpu/cpu_test_util.h"

namespace supra::testing {
namespace {

constexpr double kTolerance = 1e-4;  // max|Δ| / max|ref|, float32 engine vs float64 reference

struct GoldenCase {
  std::string model;   // tests/data/models/<model>
  std::string golden;  // tests/data/golden/<golden>.safetensors
};
void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.model; }

// Copies a golden tensor (possibly unaligned) into a vector of T.
template <typename T>
std::vector<T> Values(const Checkpoint& golden, const std::string& name, DType dtype) {
  const TensorView* view = golden.Find(name);
  EXPECT_NE(view, nullptr) << name;
  if (view == nullptr) return {};
  EXPECT_EQ(view->dtype, dtype) << name;
  std::vector<T> out(view->nbytes / sizeof(T));
  std::memcpy(out.data(), view->data, out.size() * sizeof(T));
  return out;
}

class GoldenTest : public ::testing::TestWithParam<GoldenCase> {
 protected:
  void SetUp() override {
    const std::string data = SUPRA_TEST_DATA_DIR;
    const std::string model_dir = data + "/models/" + GetParam().model;
    auto config = LoadModelConfig(model_dir + "/config.json");
    if (absl::IsNotFound(config.status())) GTEST_SKIP() << "no " << model_dir;
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    auto checkpoint = OpenCheckpoint(model_dir);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    auto backend = CreateCpuBackend(config_, *checkpoint, CpuBackendOptions{4, kTestThreads});
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
    auto golden = ReadSafetensors(data + "/golden/" + GetParam().golden + ".safetensors");
    ASSERT_TRUE(golden.ok()) << golden.status();
    golden_ = std::move(*golden);
    tokens_ = Values<int32_t>(golden_, "tokens", DType::kI32);
    logits_ = Values<float>(golden_, "logits", DType::kF32);
    ASSERT_EQ(logits_.size(), tokens_.size() * config_.vocab_size);
  }

  ModelConfig config_;
  std::unique_ptr<Backend> backend_;
  Checkpoint golden_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;  // [T, V]
};

TEST_P(GoldenTest, TeacherForcedLogitsAndState) {
  const std::vector<float> state = Values<float>(golden_, "state", DType::kF32);
  ASSERT_EQ(static_cast<int64_t>(state.size()), config_.state_numel());
  const int vocab = config_.vocab_size;
  // Token by token, and chunked with a few chunk sizes.
  EXPECT_LE(WorstRowRelDiff(DecodeOneByOne(*backend_, 0, tokens_, 0), logits_, vocab), kTolerance) << "decode";
  EXPECT_LE(RelMaxDiff(ReadState(*backend_, 0), state), kTolerance) << "decode";
  for (int chunk : {1, 7, 16, 256}) {
    ASSERT_TRUE(backend_->ResetSlot(1).ok());
    EXPECT_LE(WorstRowRelDiff(PrefillAll(*backend_, 1, tokens_, 0, chunk), logits_, vocab), kTolerance)
        << "chunk " << chunk;
    EXPECT_LE(RelMaxDiff(ReadState(*backend_, 1), state), kTolerance) << "chunk " << chunk;
  }
}

TEST_P(GoldenTest, GreedyContinuation) {
  const std::vector<int32_t> expected = Values<int32_t>(golden_, "greedy_tokens", DType::kI32);
  ASSERT_EQ(expected.size(), 16u);
  const std::vector<float> logits = PrefillAll(*backend_, 0, tokens_, 0, 16);
  const int32_t first = Argmax(absl::MakeSpan(logits).subspan(logits.size() - config_.vocab_size));
  std::vector<int32_t> got = {first};
  const std::vector<int32_t> rest =
      GreedyAlone(*backend_, 0, first, static_cast<int64_t>(tokens_.size()), static_cast<int>(expected.size()) - 1);
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_EQ(got, expected);
}

TEST_P(GoldenTest, PositionsJustBelowTwoToThe31) {
  const std::vector<int64_t> start = Values<int64_t>(golden_, "far_start", DType::kI64);
  const std::vector<int32_t> tokens = Values<int32_t>(golden_, "far_tokens", DType::kI32);
  const std::vector<float> expected = Values<float>(golden_, "far_logits", DType::kF32);
  ASSERT_EQ(start.size(), 1u);
  ASSERT_EQ(start[0] + static_cast<int64_t>(tokens.size()) - 1, kMaxPosition);
  const int vocab = config_.vocab_size;
  EXPECT_LE(WorstRowRelDiff(DecodeOneByOne(*backend_, 0, tokens, start[0]), expected, vocab), kTolerance);
  EXPECT_LE(WorstRowRelDiff(PrefillAll(*backend_, 1, tokens, start[0], 3), expected, vocab), kTolerance);
}

// Only h32 has the long prompt: three full 256-token chunks and a partial one.
using GoldenLongTest = GoldenTest;

TEST_P(GoldenLongTest, LongPrompt) {
  const std::vector<int32_t> tokens = Values<int32_t>(golden_, "long_tokens", DType::kI32);
  const std::vector<float> expected = Values<float>(golden_, "long_logits_last", DType::kF32);
  ASSERT_EQ(tokens.size(), 800u);
  for (int chunk : {256, 100, 800}) {
    ASSERT_TRUE(backend_->ResetSlot(0).ok());
    std::vector<float> last(config_.vocab_size);
    const PrefillSequence sequence{0, tokens, 0};
    ASSERT_TRUE(backend_->Prefill({&sequence, 1}, chunk, LogitsOutput::kLastOnly, absl::MakeSpan(last)).ok());
    EXPECT_LE(RelMaxDiff(last, expected), kTolerance) << "chunk " << chunk;
  }
  ASSERT_TRUE(backend_->ResetSlot(1).ok());
  const std::vector<float> decoded = DecodeOneByOne(*backend_, 1, tokens, 0);
  EXPECT_LE(RelMaxDiff(absl::MakeSpan(decoded).subspan(decoded.size() - config_.vocab_size), expected), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Models, GoldenTest,
    ::testing::Values(GoldenCase{"mha", "mha"}, GoldenCase{"gqa", "gqa"}, GoldenCase{"gqa_qknorm", "gqa_qknorm"},
                      GoldenCase{"h6", "h6"}, GoldenCase{"decay_start", "decay_start"}, GoldenCase{"tied", "tied"},
                      GoldenCase{"tied_single", "tied_single"}, GoldenCase{"nodecay", "nodecay"},
                      GoldenCase{"h32", "h32"}, GoldenCase{"fmt_st_f32", "fmt_st_f32"},
                      // The same float32 weights in the other containers.
                      GoldenCase{"fmt_st_sharded", "fmt_st_f32"}, GoldenCase{"fmt_pt_f32", "fmt_st_f32"},
                      GoldenCase{"fmt_pt_sharded", "fmt_st_f32"}, GoldenCase{"fmt_pt_zip64", "fmt_st_f32"}),
    [](const ::testing::TestParamInfo<GoldenCase>& param_info) { return param_info.param.model; });
INSTANTIATE_TEST_SUITE_P(Models, GoldenLongTest, ::testing::Values(GoldenCase{"h32", "h32"}),
                         [](const ::testing::TestParamInfo<GoldenCase>& param_info) { return param_info.param.model; });

}  // namespace
}  // namespace supra::testing

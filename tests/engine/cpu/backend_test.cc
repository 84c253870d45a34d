// The CPU backend's state pool, weight loading and argument checks.
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/cpu/cpu_test_util.h"

namespace supra::testing {
namespace {

using ::testing::HasSubstr;

ModelConfig SmallConfig() { return TinyConfig(32, 2, 4, 2, 8, 48, 64); }

std::vector<float> RandomState(const ModelConfig& config, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> state(config.state_numel());
  for (float& x : state) x = dist(rng);
  return state;
}

TEST(CpuBackendTest, Basics) {
  auto backend = MakeBackend(SmallConfig(), 1, 5);
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->name(), "cpu");
  EXPECT_EQ(backend->num_slots(), 5);
  EXPECT_EQ(backend->config().dim, 32);
  // A fresh slot is empty.
  for (float x : ReadState(*backend, 4)) ASSERT_EQ(x, 0.0f);
}

TEST(CpuBackendTest, WriteReadRoundTrip) {
  const ModelConfig config = SmallConfig();
  auto backend = MakeBackend(config, 1, 4);
  const std::vector<float> state = RandomState(config, 2);
  ASSERT_TRUE(backend->WriteState(2, state).ok());
  EXPECT_EQ(ReadState(*backend, 2), state);
  for (float x : ReadState(*backend, 1)) ASSERT_EQ(x, 0.0f);  // neighbours untouched
  for (float x : ReadState(*backend, 3)) ASSERT_EQ(x, 0.0f);
  ASSERT_TRUE(backend->ResetSlot(2).ok());
  for (float x : ReadState(*backend, 2)) ASSERT_EQ(x, 0.0f);
}

TEST(CpuBackendTest, CopySlotForksASequence) {
  const ModelConfig config = SmallConfig();
  auto backend = MakeBackend(config, 3, 4);
  const std::vector<int32_t> prompt = RandomTokens(20, config.vocab_size, 4);
  PrefillAll(*backend, 0, prompt, 0, 8);
  ASSERT_TRUE(backend->CopySlot(0, 3).ok());
  EXPECT_EQ(ReadState(*backend, 3), ReadState(*backend, 0));
  ASSERT_TRUE(backend->CopySlot(3, 3).ok());  // onto itself: no change
  EXPECT_EQ(ReadState(*backend, 3), ReadState(*backend, 0));
  // Both continue identically.
  const std::vector<int32_t> next = {7};
  EXPECT_EQ(DecodeOneByOne(*backend, 0, next, 20), DecodeOneByOne(*backend, 3, next, 20));
  // A state written from another slot's read continues identically too.
  ASSERT_TRUE(backend->WriteState(1, ReadState(*backend, 0)).ok());
  EXPECT_EQ(DecodeOneByOne(*backend, 0, next, 21), DecodeOneByOne(*backend, 1, next, 21));
  // After a reset, a slot behaves like a fresh sequence.
  ASSERT_TRUE(backend->ResetSlot(0).ok());
  EXPECT_EQ(DecodeOneByOne(*backend, 0, next, 0), DecodeOneByOne(*backend, 2, next, 0));
}

// Weights stored as bf16 or fp16, at odd addresses, convert to the same
// float32 values as an fp32 checkpoint holding the rounded values.
TEST(CpuBackendTest, HalfPrecisionAndUnalignedWeights) {
  const ModelConfig config = SmallConfig();
  const std::vector<int32_t> prompt = RandomTokens(12, config.vocab_size, 5);
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    RandomModelOptions options{.seed = 9, .dtype = dtype, .unaligned = true};
    const Checkpoint half = MakeRandomCheckpoint(config, options);
    // The same values upcast to an fp32 checkpoint, aligned.
    Checkpoint full;
    auto storage = std::make_shared<std::vector<std::vector<float>>>();
    for (const auto& [name, view] : half.tensors()) {
      storage->emplace_back(view.numel());
      ASSERT_TRUE(ConvertToFloat32(view.dtype, view.data, view.numel(), storage->back().data()));
      ASSERT_TRUE(full.Add(name, TensorView{.dtype = DType::kF32,
                                            .shape = view.shape,
                                            .data = reinterpret_cast<const std::byte*>(storage->back().data()),
                                            .nbytes = storage->back().size() * 4,
                                            .source = "upcast"})
                      .ok());
    }
    full.KeepAlive(storage);
    auto a = CreateCpuBackend(config, half, {2, 2});
    auto b = CreateCpuBackend(config, full, {2, 2});
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(PrefillAll(**a, 0, prompt, 0, 5), PrefillAll(**b, 0, prompt, 0, 5));
  }
}

TEST(CpuBackendTest, TiedWeightsUnderEitherNameOrBoth) {
  ModelConfig config = SmallConfig();
  config.weight_tying = true;
  const std::vector<int32_t> prompt = RandomTokens(12, config.vocab_size, 6);
  std::vector<std::vector<float>> results;
  for (TiedStorage storage : {TiedStorage::kEmbedding, TiedStorage::kOutput, TiedStorage::kBoth}) {
    const Checkpoint checkpoint = MakeRandomCheckpoint(config, {.seed = 10, .tied_storage = storage});
    auto backend = CreateCpuBackend(config, checkpoint, {2, 2});
    ASSERT_TRUE(backend.ok()) << backend.status();
    results.push_back(PrefillAll(**backend, 0, prompt, 0, 5));
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

TEST(CpuBackendTest, RefusesBadCheckpointsAndOptions) {
  const ModelConfig config = SmallConfig();
  const Checkpoint checkpoint = MakeRandomCheckpoint(config);
  ModelConfig other = config;
  other.n_layers = 3;  // the checkpoint lacks layer 2
  auto missing = CreateCpuBackend(other, checkpoint, {});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("model.layers.2."));
  EXPECT_EQ(CreateCpuBackend(config, checkpoint, {0, 1}).status().code(), absl::StatusCode::kInvalidArgument);
  ModelConfig inconsistent = config;
  inconsistent.n_heads_kv = 3;
  EXPECT_EQ(CreateCpuBackend(inconsistent, checkpoint, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

class BadArgumentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = MakeBackend(config_, 7, 4);
    ASSERT_NE(backend_, nullptr);
    PrefillAll(*backend_, 1, RandomTokens(5, config_.vocab_size, 8), 0, 4);
    before_ = ReadState(*backend_, 1);
  }
  void TearDown() override {
    // A refused call changes nothing.
    EXPECT_EQ(ReadState(*backend_, 1), before_);
    for (int32_t slot : {0, 2, 3}) {
      for (float x : ReadState(*backend_, slot)) ASSERT_EQ(x, 0.0f);
    }
  }

  absl::Status Decode(std::vector<int32_t> slots, std::vector<int32_t> tokens, std::vector<int64_t> positions,
                      size_t logit_rows) {
    std::vector<float> logits(logit_rows * config_.vocab_size);
    return backend_->Decode(DecodeBatch{slots, tokens, positions}, absl::MakeSpan(logits));
  }
  absl::Status Prefill(const std::vector<PrefillSequence>& seqs, size_t logit_rows, int chunk = 4,
                       LogitsOutput output = LogitsOutput::kLastOnly) {
    std::vector<float> logits(logit_rows * config_.vocab_size);
    return backend_->Prefill(seqs, chunk, output, absl::MakeSpan(logits));
  }

  const ModelConfig config_ = SmallConfig();
  std::unique_ptr<Backend> backend_;
  std::vector<float> before_;
  const std::vector<int32_t> three_ = {1, 2, 3};
};

TEST_F(BadArgumentsTest, Slots) {
  std::vector<float> state(config_.state_numel());
  for (int32_t slot : {-1, 4, 1000}) {
    EXPECT_EQ(backend_->ResetSlot(slot).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(backend_->CopySlot(slot, 0).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(backend_->CopySlot(1, slot).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(backend_->ReadState(slot, absl::MakeSpan(state)).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(backend_->WriteState(slot, state).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Decode({slot}, {1}, {0}, 1).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Prefill({{slot, three_, 0}}, 1).code(), absl::StatusCode::kInvalidArgument);
  }
  const absl::Status twice = Decode({2, 1, 2}, {1, 1, 1}, {0, 5, 0}, 3);
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(twice.message(), HasSubstr("slot 2"));
  EXPECT_EQ(Prefill({{3, three_, 0}, {3, three_, 0}}, 2).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BadArgumentsTest, SpanSizes) {
  std::vector<float> short_state(config_.state_numel() - 1);
  EXPECT_EQ(backend_->ReadState(1, absl::MakeSpan(short_state)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->WriteState(1, std::vector<float>(config_.state_numel() + 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decode({1, 2}, {1}, {5, 0}, 2).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decode({1, 2}, {1, 1}, {5}, 2).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decode({1, 2}, {1, 1}, {5, 0}, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decode({1, 2}, {1, 1}, {5, 0}, 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Prefill({{2, three_, 0}}, 2).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Prefill({{2, three_, 0}}, 2, 4, LogitsOutput::kAll).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Prefill({{2, {}, 0}}, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Prefill({{2, three_, 0}}, 1, 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Prefill({{2, three_, 0}}, 1, -3).code(), absl::StatusCode::kInvalidArgument);
  // Empty batches are fine and do nothing.
  EXPECT_TRUE(Decode({}, {}, {}, 0).ok());
  EXPECT_TRUE(Prefill({}, 0).ok());
}

TEST_F(BadArgumentsTest, TokenIdsOutsideTheVocabulary) {
  for (int32_t token : {-1, 64, 1 << 30}) {
    const absl::Status decode = Decode({2}, {token}, {0}, 1);
    EXPECT_EQ(decode.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(decode.message(), HasSubstr(absl::StrCat("token id ", token)));
    const std::vector<int32_t> tokens = {5, 6, token, 7};
    const absl::Status prefill = Prefill({{0, three_, 0}, {2, tokens, 0}}, 2);
    EXPECT_EQ(prefill.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(prefill.message(), HasSubstr(absl::StrCat("token id ", token)));
  }
}

TEST_F(BadArgumentsTest, Positions) {
  EXPECT_EQ(Decode({2}, {1}, {-1}, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decode({2}, {1}, {kMaxPosition + 1}, 1).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Decode({2, 3}, {1, 1}, {0, int64_t{1} << 62}, 2).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Prefill({{2, three_, -1}}, 1).code(), absl::StatusCode::kInvalidArgument);
  // Three tokens from kMaxPosition − 1 would reach kMaxPosition + 1.
  EXPECT_EQ(Prefill({{2, three_, kMaxPosition - 1}}, 1).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Prefill({{2, three_, INT64_MAX}}, 1).code(), absl::StatusCode::kOutOfRange);
}

// The last valid positions work, and chunked equals decode there too.
TEST(FarPositionsTest, UpToTheLargestPosition) {
  const ModelConfig config = SmallConfig();
  auto backend = MakeBackend(config, 12, 4);
  const std::vector<int32_t> tokens = RandomTokens(8, config.vocab_size, 13);
  const int64_t start = kMaxPosition - 7;
  const std::vector<float> decoded = DecodeOneByOne(*backend, 0, tokens, start);
  const std::vector<float> chunked = PrefillAll(*backend, 1, tokens, start, 3);
  EXPECT_LE(WorstRowRelDiff(chunked, decoded, config.vocab_size), 1e-5);
  EXPECT_LE(RelMaxDiff(ReadState(*backend, 1), ReadState(*backend, 0)), 1e-5);
  // Rotary attention only sees relative positions, so the same tokens from
  // position 0 give the same logits: only if the angles near 2^31 are exact
  // (float32 angles there are off by radians).
  const std::vector<float> near = PrefillAll(*backend, 2, tokens, 0, 8);
  EXPECT_LE(WorstRowRelDiff(chunked, near, config.vocab_size), 1e-5);
}

// Absolute positions matter once a state is carried: the same state and token
// at another position give other logits.
TEST(FarPositionsTest, PositionOfAContinuationMatters) {
  const ModelConfig config = SmallConfig();
  auto backend = MakeBackend(config, 14, 4);
  PrefillAll(*backend, 0, RandomTokens(10, config.vocab_size, 15), 0, 4);
  ASSERT_TRUE(backend->CopySlot(0, 1).ok());
  const std::vector<int32_t> token = {3};
  const std::vector<float> right = DecodeOneByOne(*backend, 0, token, 10);
  const std::vector<float> far = DecodeOneByOne(*backend, 1, token, kMaxPosition);
  EXPECT_GT(RelMaxDiff(far, right), 1e-3);
}

}  // namespace
}  // namespace supra::testing

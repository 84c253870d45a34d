// Backend::DecodeAndSample on the CPU: decode, then the CPU sampler, with the
// same results as Decode followed by Sampler::Sample.
#include <cmath>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/sampling/sampler.h"
#include "gtest/gtest.h"
#include "tests/engine/cpu/cpu_test_util.h"
#include "tests/engine/testing/random_model.h"

namespace supra {
namespace {

TEST(DecodeAndSampleTest, MatchesDecodeThenSample) {
  const ModelConfig config = testing::TinyConfig(32, 2, 4, 2, 8, 64, 97);
  auto sampling = testing::MakeBackend(config, 11, 4);
  auto reference = testing::MakeBackend(config, 11, 4);
  const std::vector<int32_t> slots = {3, 0, 2};
  const std::vector<int32_t> tokens = {5, 17, 42};
  const std::vector<int64_t> positions = {0, 0, 0};
  const DecodeBatch batch{slots, tokens, positions};
  const std::vector<int32_t> history = {1, 5, 9, 5};

  std::vector<SampleSpec> specs(3);
  specs[0].params.temperature = 0;  // greedy
  specs[1].params.temperature = 0.9f;
  specs[1].params.top_p = 0.8f;
  specs[1].params.seed = 77;
  specs[1].token_index = 4;
  specs[2].params.temperature = 1.3f;
  specs[2].params.top_k = 5;
  specs[2].params.repetition_penalty = 1.4f;
  specs[2].params.seed = 9;
  for (SampleSpec& s : specs) s.history = history;

  std::vector<int32_t> sampled(3);
  std::vector<float> logprobs(3);
  ASSERT_TRUE(sampling->DecodeAndSample(batch, specs, absl::MakeSpan(sampled), absl::MakeSpan(logprobs)).ok());

  std::vector<float> logits(3 * 97);
  ASSERT_TRUE(reference->Decode(batch, absl::MakeSpan(logits)).ok());
  Sampler sampler;
  for (int i = 0; i < 3; ++i) {
    const absl::Span<const float> row = absl::MakeConstSpan(logits).subspan(i * 97, 97);
    auto expected = sampler.Sample(row, specs[i].params, history, specs[i].token_index);
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(sampled[i], *expected) << i;
    double max = -INFINITY, sum = 0;
    for (float l : row) max = std::max<double>(max, l);
    for (float l : row) sum += std::exp(l - max);
    EXPECT_NEAR(logprobs[i], row[sampled[i]] - max - std::log(sum), 1e-5) << i;
  }
  // The states advanced exactly as with Decode.
  std::vector<float> a(config.state_numel()), b(config.state_numel());
  for (int32_t slot : slots) {
    ASSERT_TRUE(sampling->ReadState(slot, absl::MakeSpan(a)).ok());
    ASSERT_TRUE(reference->ReadState(slot, absl::MakeSpan(b)).ok());
    EXPECT_EQ(a, b);
  }
}

TEST(DecodeAndSampleTest, RefusesMismatchedSpansAndBadParams) {
  const ModelConfig config = testing::TinyConfig(32, 1, 4, 4, 8, 64, 50);
  auto backend = testing::MakeBackend(config, 3, 2);
  const std::vector<int32_t> slots = {0, 1}, tokens = {3, 4};
  const std::vector<int64_t> positions = {0, 0};
  std::vector<SampleSpec> specs(1);
  std::vector<int32_t> out(2);
  EXPECT_EQ(backend->DecodeAndSample({slots, tokens, positions}, specs, absl::MakeSpan(out), {}).code(),
            absl::StatusCode::kInvalidArgument);
  specs.resize(2);
  specs[1].params.top_p = 0;
  EXPECT_EQ(backend->DecodeAndSample({slots, tokens, positions}, specs, absl::MakeSpan(out), {}).code(),
            absl::StatusCode::kInvalidArgument);
  specs[1].params.top_p = 1;
  EXPECT_TRUE(backend->DecodeAndSample({slots, tokens, positions}, specs, absl::MakeSpan(out), {}).ok());
}

}  // namespace
}  // namespace supra

#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace supra {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0;
  return p;
}

int32_t SampleOrDie(Sampler& sampler, const std::vector<float>& logits, const SamplingParams& params,
                    const std::vector<int32_t>& history, int64_t index) {
  absl::StatusOr<int32_t> token = sampler.Sample(logits, params, history, index);
  EXPECT_TRUE(token.ok()) << token.status();
  return token.ok() ? *token : -1;
}

std::vector<float> RandomLogits(int vocab, uint32_t seed, float scale = 2.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab);
  for (float& l : logits) l = normal(rng);
  return logits;
}

TEST(SamplerTest, GreedyPicksArgmaxTiesToLowestId) {
  Sampler sampler;
  EXPECT_EQ(SampleOrDie(sampler, {0.1f, 2.0f, -1.0f, 1.9f}, Greedy(), {}, 0), 1);
  EXPECT_EQ(SampleOrDie(sampler, {0.1f, 2.0f, -1.0f, 2.0f, 2.0f}, Greedy(), {}, 0), 1);
  EXPECT_EQ(SampleOrDie(sampler, {kNegInf, kNegInf, -5.0f, -5.0f}, Greedy(), {}, 0), 2);
  EXPECT_EQ(SampleOrDie(sampler, {3.0f, 3.0f, 3.0f}, Greedy(), {}, 0), 0);
  // Greedy ignores the seed and the index.
  SamplingParams seeded = Greedy();
  seeded.seed = 99;
  EXPECT_EQ(SampleOrDie(sampler, {0.1f, 2.0f, -1.0f, 1.9f}, seeded, {}, 12345), 1);
}

TEST(SamplerTest, PenaltiesApplyBeforeGreedy) {
  Sampler sampler;
  SamplingParams p = Greedy();
  p.repetition_penalty = 1.2f;  // 2.0 -> 1.667 < 1.9
  EXPECT_EQ(SampleOrDie(sampler, {0.1f, 2.0f, -1.0f, 1.9f}, p, {1}, 0), 3);
  p.penalty_window = 0;
  EXPECT_EQ(SampleOrDie(sampler, {0.1f, 2.0f, -1.0f, 1.9f}, p, {1}, 0), 1);
  // The window is the last penalty_window tokens of what is passed.
  p.penalty_window = 1;
  EXPECT_EQ(SampleOrDie(sampler, {0.1f, 2.0f, -1.0f, 1.9f}, p, {1, 0}, 0), 1);
}

TEST(SamplerTest, TopKOfOneIsGreedyForEverySeed) {
  Sampler sampler;
  const std::vector<float> logits = RandomLogits(500, 5);
  const int32_t argmax = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  SamplingParams p;
  p.top_k = 1;
  p.temperature = 5.0f;
  for (int i = 0; i < 50; ++i) {
    p.seed = static_cast<uint64_t>(i) * 7919;
    EXPECT_EQ(SampleOrDie(sampler, logits, p, {}, i), argmax);
  }
}

TEST(SamplerTest, VocabOfOne) {
  Sampler sampler;
  SamplingParams p;
  p.top_p = 0.1f;
  p.min_p = 1.0f;
  p.top_k = 5;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(SampleOrDie(sampler, {-3.0f}, p, {0, 0}, i), 0);
  EXPECT_EQ(SampleOrDie(sampler, {-3.0f}, Greedy(), {}, 0), 0);
}

TEST(SamplerTest, NegInfTokensAreNeverDrawn) {
  Sampler sampler;
  std::vector<float> logits(64, 0.0f);
  for (size_t i = 0; i < logits.size(); i += 2) logits[i] = kNegInf;
  SamplingParams p;
  p.temperature = 3.0f;
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 2.0f;
  const std::vector<int32_t> history = {0, 2, 4, 1};
  for (int i = 0; i < 2000; ++i) EXPECT_EQ(SampleOrDie(sampler, logits, p, history, i) % 2, 1);
  // A single finite logit is always drawn.
  std::vector<float> one(100, kNegInf);
  one[42] = -1000.0f;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(SampleOrDie(sampler, one, p, {}, i), 42);
}

TEST(SamplerTest, SameSeedAndIndexGiveTheSameTokenWhateverTheCallOrder) {
  const std::vector<float> logits = RandomLogits(1000, 1, 1.0f);
  const std::vector<float> other = RandomLogits(1000, 2, 3.0f);
  SamplingParams p;
  p.seed = 1234;
  p.top_p = 0.95f;
  SamplingParams q;
  q.seed = 77;
  constexpr int kN = 300;
  Sampler forward;
  std::vector<int32_t> in_order(kN);
  for (int i = 0; i < kN; ++i) in_order[i] = SampleOrDie(forward, logits, p, {}, i);
  // Backwards, interleaved with another request on the same sampler.
  Sampler shared;
  for (int i = kN - 1; i >= 0; --i) {
    SampleOrDie(shared, other, q, {3, 4}, i);
    EXPECT_EQ(SampleOrDie(shared, logits, p, {}, i), in_order[i]) << i;
  }
  // The stream is not constant: the draws really depend on the index.
  EXPECT_GT(std::set<int32_t>(in_order.begin(), in_order.end()).size(), 20u);
}

TEST(SamplerTest, DifferentSeedsGiveDifferentStreams) {
  const std::vector<float> logits(50, 0.0f);  // uniform: every draw shows the generator
  Sampler sampler;
  std::vector<std::vector<int32_t>> streams;
  for (uint64_t seed : {0ull, 1ull, 2ull, 1ull << 32, ~0ull}) {
    SamplingParams p;
    p.seed = seed;
    std::vector<int32_t> stream;
    for (int i = 0; i < 100; ++i) stream.push_back(SampleOrDie(sampler, logits, p, {}, i));
    streams.push_back(stream);
  }
  for (size_t a = 0; a < streams.size(); ++a) {
    for (size_t b = a + 1; b < streams.size(); ++b) {
      int same = 0;
      for (int i = 0; i < 100; ++i) same += streams[a][i] == streams[b][i];
      EXPECT_LT(same, 15) << "seeds " << a << " and " << b << " look correlated";  // ~2 expected
    }
  }
}

// The top-k and top-p cuts on a 32000-token vocabulary: the drawn token is
// always among the k best, or inside the nucleus computed here by full sort.
TEST(SamplerTest, LargeVocabCutsHold) {
  const std::vector<float> logits = RandomLogits(32000, 11, 3.0f);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  Sampler sampler;
  SamplingParams k;
  k.top_k = 40;
  const std::set<int32_t> top40(order.begin(), order.begin() + 40);
  for (int i = 0; i < 300; ++i) EXPECT_TRUE(top40.count(SampleOrDie(sampler, logits, k, {}, i))) << i;

  SamplingParams p;
  p.top_p = 0.5f;
  const double max = logits[order[0]];
  double z = 0;
  for (const float l : logits) z += std::exp(l - max);
  std::set<int32_t> nucleus;
  double cum = 0;
  for (const int32_t id : order) {
    nucleus.insert(id);
    cum += std::exp(logits[id] - max) / z;
    if (cum >= 0.5) break;
  }
  ASSERT_GT(nucleus.size(), 40u);  // wide enough that the chunked sort has to grow
  std::set<int32_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const int32_t t = SampleOrDie(sampler, logits, p, {}, i);
    EXPECT_TRUE(nucleus.count(t)) << i;
    seen.insert(t);
  }
  EXPECT_GT(seen.size(), 20u);
}

TEST(SamplerTest, BadInputsAreInvalidArgument) {
  Sampler sampler;
  const SamplingParams ok;
  auto code = [&](const std::vector<float>& logits, const SamplingParams& p, const std::vector<int32_t>& history,
                  int64_t index) { return sampler.Sample(logits, p, history, index).status().code(); };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code({}, ok, {}, 0), kInvalid);
  EXPECT_EQ(code({1.0f, std::numeric_limits<float>::quiet_NaN()}, ok, {}, 0), kInvalid);
  EXPECT_EQ(code({1.0f, std::numeric_limits<float>::infinity()}, ok, {}, 0), kInvalid);
  EXPECT_EQ(code({kNegInf, kNegInf}, ok, {}, 0), kInvalid);
  EXPECT_EQ(code({kNegInf, kNegInf}, Greedy(), {}, 0), kInvalid);
  EXPECT_EQ(code({1.0f, 2.0f}, ok, {}, -1), kInvalid);
  SamplingParams bad;
  bad.top_p = 0;
  EXPECT_EQ(code({1.0f, 2.0f}, bad, {}, 0), kInvalid);
  SamplingParams penalised;
  penalised.repetition_penalty = 1.1f;
  EXPECT_EQ(code({1.0f, 2.0f}, penalised, {0, 2}, 0), kInvalid);
}

}  // namespace
}  // namespace supra

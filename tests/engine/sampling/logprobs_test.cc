#include "engine/sampling/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace supra {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

TEST(LogprobsTest, LogSoftmaxOfTheRawLogits) {
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, kNegInf, 0.5f};
  double z = 0;
  for (const float l : logits) z += std::exp(static_cast<double>(l));
  absl::StatusOr<Logprobs> lp = LogprobsCalculator().Compute(logits, 2, 3);
  ASSERT_TRUE(lp.ok()) << lp.status();
  EXPECT_NEAR(lp->chosen, -2.0 - std::log(z), 1e-6);
  ASSERT_EQ(lp->top.size(), 3u);
  // Most likely first; the tie between tokens 1 and 3 goes to the lower id.
  EXPECT_EQ(lp->top[0].token, 1);
  EXPECT_EQ(lp->top[1].token, 3);
  EXPECT_EQ(lp->top[2].token, 0);
  EXPECT_NEAR(lp->top[0].logprob, 3.0 - std::log(z), 1e-6);
  EXPECT_EQ(lp->top[0].logprob, lp->top[1].logprob);
  EXPECT_NEAR(lp->top[2].logprob, 1.0 - std::log(z), 1e-6);

  absl::StatusOr<Logprobs> masked = LogprobsCalculator().Compute(logits, 4, 0);
  ASSERT_TRUE(masked.ok());
  EXPECT_EQ(masked->chosen, kNegInf);
  EXPECT_TRUE(masked->top.empty());
  // Tokens with a -inf logit are never listed.
  absl::StatusOr<Logprobs> all = LogprobsCalculator().Compute(logits, 0, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->top.size(), logits.size() - 1);
}

TEST(LogprobsTest, FullListIsSortedAndSumsToOne) {
  std::vector<float> logits(257);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>((i * 37) % 101) * 0.1f - 4.0f;
  absl::StatusOr<Logprobs> lp = LogprobsCalculator().Compute(logits, 0, 1000);
  ASSERT_TRUE(lp.ok());
  ASSERT_EQ(lp->top.size(), logits.size());  // top_n beyond the vocab lists the vocab
  double total = 0;
  for (size_t i = 0; i < lp->top.size(); ++i) {
    total += std::exp(static_cast<double>(lp->top[i].logprob));
    if (i == 0) continue;
    const TokenLogprob& prev = lp->top[i - 1];
    const TokenLogprob& cur = lp->top[i];
    EXPECT_TRUE(prev.logprob > cur.logprob || (prev.logprob == cur.logprob && prev.token < cur.token)) << i;
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
}

// The top-N selection against a full sort, on a 32000-token row with many
// exact ties, for N on both sides of the heap/nth_element switch.
TEST(LogprobsTest, TopNMatchesAFullSort) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(32000);
  for (float& l : logits) l = std::round(normal(rng) * 4) / 4;
  logits[17] = kNegInf;
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  LogprobsCalculator calculator;
  for (const int32_t n : {1, 20, 256, 257, 1000}) {
    absl::StatusOr<Logprobs> lp = calculator.Compute(logits, 0, n);
    ASSERT_TRUE(lp.ok());
    ASSERT_EQ(lp->top.size(), static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) EXPECT_EQ(lp->top[i].token, order[i]) << "n " << n << " rank " << i;
  }
}

TEST(LogprobsTest, StableForLargeLogits) {
  absl::StatusOr<Logprobs> lp = LogprobsCalculator().Compute(std::vector<float>{1000.0f, 999.0f}, 1, 1);
  ASSERT_TRUE(lp.ok());
  EXPECT_NEAR(lp->chosen, -1.0 - std::log1p(std::exp(-1.0)), 1e-5);
  EXPECT_NEAR(lp->top[0].logprob, -std::log1p(std::exp(-1.0)), 1e-5);
}

TEST(LogprobsTest, BadInputs) {
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  const std::vector<float> logits = {0.0f, 1.0f};
  EXPECT_EQ(LogprobsCalculator().Compute(logits, 2, 1).status().code(), kInvalid);
  EXPECT_EQ(LogprobsCalculator().Compute(logits, -1, 1).status().code(), kInvalid);
  EXPECT_EQ(LogprobsCalculator().Compute(logits, 0, -1).status().code(), kInvalid);
  EXPECT_EQ(LogprobsCalculator().Compute({}, 0, 1).status().code(), kInvalid);
  EXPECT_EQ(LogprobsCalculator().Compute(std::vector<float>{kNegInf, kNegInf}, 0, 1).status().code(), kInvalid);
  EXPECT_EQ(LogprobsCalculator()
                .Compute(std::vector<float>{0.0f, std::numeric_limits<float>::quiet_NaN()}, 0, 1)
                .status()
                .code(),
            kInvalid);
}

}  // namespace
}  // namespace supra

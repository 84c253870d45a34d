// Goodness of fit of the sampler's draws against the exact target
// distribution, computed here independently (full sort, double precision)
// from the definitions in sampling_params.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "engine/sampling/sampler.h"
#include "tests/engine/testing/sampling_reference.h"
#include "gtest/gtest.h"

namespace supra {
namespace {

using ::supra::testing::ChiSquare;
using ::supra::testing::Fit;
using ::supra::testing::TargetDistribution;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int kDraws = 200000;  // per case, unless the case says fewer

struct Case {
  std::string name;
  SamplingParams params;
  std::vector<float> logits;
  std::vector<int32_t> history;
  int draws = kDraws;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<float> Logits(int vocab, uint32_t seed, float scale, int masked) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab);
  for (float& l : logits) l = normal(rng);
  for (int i = 0; i < masked; ++i) logits[rng() % vocab] = kNegInf;
  return logits;
}

std::vector<Case> Cases() {
  const std::vector<float> logits = Logits(120, 7, 1.5f, 6);
  const std::vector<int32_t> history = {3, 5, 5, 7, 11, 11, 11, 13, 0, 1, 2, 40, 41};
  std::vector<Case> cases;
  auto add = [&](std::string name, auto set, const std::vector<float>& l = {}, std::vector<int32_t> h = {}) {
    Case c{std::move(name), SamplingParams{}, l.empty() ? logits : l, std::move(h)};
    c.params.seed = 20240601;
    set(c.params);
    cases.push_back(std::move(c));
  };
  add("plain", [](SamplingParams&) {});
  add("cold", [](SamplingParams& p) { p.temperature = 0.6f; });
  add("hot", [](SamplingParams& p) { p.temperature = 1.8f; });
  add("top_k", [](SamplingParams& p) {
    p.top_k = 12;
    p.temperature = 1.3f;
  });
  add("top_p", [](SamplingParams& p) { p.top_p = 0.7f; });
  add("min_p", [](SamplingParams& p) { p.min_p = 0.08f; });
  add(
      "penalties",
      [](SamplingParams& p) {
        p.repetition_penalty = 1.4f;
        p.presence_penalty = 0.6f;
        p.frequency_penalty = 0.3f;
      },
      {}, history);
  add(
      "combined",
      [](SamplingParams& p) {
        p.temperature = 0.8f;
        p.top_k = 40;
        p.top_p = 0.9f;
        p.min_p = 0.03f;
        p.repetition_penalty = 1.2f;
        p.frequency_penalty = -0.4f;
        p.penalty_window = 6;
      },
      {}, history);
  // Many exact ties: the top-p cut and its bin sort must order by id.
  std::vector<float> quantized = Logits(300, 9, 1.5f, 0);
  for (float& l : quantized) l = std::round(l * 2) / 2;
  add(
      "top_p_ties", [](SamplingParams& p) { p.top_p = 0.6f; }, quantized);
  add(
      "min_p_ties", [](SamplingParams& p) { p.min_p = 0.05f; }, quantized);  // keeps a 4-way tie
  // A large k selects with nth_element rather than a heap.
  add(
      "top_k_large",
      [](SamplingParams& p) {
        p.top_k = 300;
        p.top_p = 0.95f;
      },
      Logits(400, 5, 1.0f, 20));
  cases.back().draws = kDraws / 2;  // each draw sorts 300 candidates
  add(
      "uniform", [](SamplingParams&) {}, std::vector<float>(90, 0.25f));
  add(
      "uniform_top_k_ties", [](SamplingParams& p) { p.top_k = 30; }, std::vector<float>(90, 0.25f));
  return cases;
}

class SamplerDistributionTest : public ::testing::TestWithParam<Case> {};

TEST_P(SamplerDistributionTest, DrawsFitTheTargetDistribution) {
  const Case& c = GetParam();
  const std::vector<double> target = TargetDistribution(c.logits, c.params, c.history);
  Sampler sampler;
  std::vector<int64_t> observed(c.logits.size(), 0);
  for (int i = 0; i < c.draws; ++i) {
    absl::StatusOr<int32_t> token = sampler.Sample(c.logits, c.params, c.history, i);
    ASSERT_TRUE(token.ok()) << token.status();
    ++observed[*token];
  }
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0) {
      EXPECT_EQ(observed[i], 0) << "token " << i << " is outside the allowed set";
    }
  }
  const ChiSquare fit = Fit(observed, target, c.draws);
  ASSERT_GE(fit.bins, 2);
  EXPECT_LT(fit.statistic, fit.critical) << "bins " << fit.bins;

  // Power: the same draws reject a slightly different distribution (the
  // temperature 10% off, or for a uniform target a 2x weight on token 0).
  SamplingParams off = c.params;
  off.temperature *= 1.1f;
  std::vector<double> wrong = TargetDistribution(c.logits, off, c.history);
  if (wrong == target) {
    wrong[0] *= 2;
    const double z = std::accumulate(wrong.begin(), wrong.end(), 0.0);
    for (double& q : wrong) q /= z;
  }
  const ChiSquare against_wrong = Fit(observed, wrong, c.draws);
  EXPECT_GT(against_wrong.statistic, against_wrong.critical) << "the test cannot tell a 10% temperature change";
}

INSTANTIATE_TEST_SUITE_P(Params, SamplerDistributionTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace supra

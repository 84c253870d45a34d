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
#include "gtest/gtest.h"

namespace supra {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int kDraws = 200000;  // per case, unless the case says fewer
// Upper 1e-4 quantile of the standard normal: the test fails a correct
// sampler once in 10,000 seeds, and the seeds are fixed.
constexpr double kZ = 3.719016485;

// The target distribution of sampling_params.h, step by step.
std::vector<double> TargetDistribution(const std::vector<float>& logits, const SamplingParams& p,
                                       const std::vector<int32_t>& history) {
  const int vocab = static_cast<int>(logits.size());
  std::vector<double> l(logits.begin(), logits.end());
  std::map<int32_t, int> counts;
  const size_t window = std::min(history.size(), static_cast<size_t>(p.penalty_window));
  for (size_t i = history.size() - window; i < history.size(); ++i) ++counts[history[i]];
  for (const auto& [id, count] : counts) {
    if (std::isinf(l[id])) continue;
    l[id] = l[id] > 0 ? l[id] / p.repetition_penalty : l[id] * p.repetition_penalty;
    l[id] -= p.presence_penalty + p.frequency_penalty * count;
  }
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });

  std::vector<bool> kept(vocab, false);
  for (int r = 0; r < vocab; ++r) kept[order[r]] = !std::isinf(l[order[r]]) && (p.top_k == 0 || r < p.top_k);
  std::vector<double> prob(vocab, 0.0);
  double z = 0;
  for (int i = 0; i < vocab; ++i) {
    if (kept[i]) z += prob[i] = std::exp((l[i] - l[order[0]]) / p.temperature);
  }
  for (double& q : prob) q /= z;
  double cum = 0;
  for (const int32_t id : order) {
    if (!kept[id]) continue;
    if (cum >= p.top_p) kept[id] = false;
    cum += prob[id];
  }
  const double p_max = prob[order[0]];
  for (int i = 0; i < vocab; ++i) kept[i] = kept[i] && prob[i] >= p.min_p * p_max;
  z = 0;
  for (int i = 0; i < vocab; ++i) z += kept[i] ? prob[i] : 0.0;
  for (int i = 0; i < vocab; ++i) prob[i] = kept[i] ? prob[i] / z : 0.0;
  return prob;
}

// Pearson's statistic over bins of expected count >= 5 (the rest merged into
// one bin), and its Wilson-Hilferty critical value at p = 1e-4.
struct ChiSquare {
  double statistic = 0;
  double critical = 0;
  int bins = 0;
};

ChiSquare Fit(const std::vector<int64_t>& observed, const std::vector<double>& target, int64_t n) {
  ChiSquare out;
  double small_expected = 0;
  int64_t small_observed = 0;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0) continue;
    const double expected = target[i] * static_cast<double>(n);
    if (expected < 5) {
      small_expected += expected;
      small_observed += observed[i];
      continue;
    }
    out.statistic += std::pow(static_cast<double>(observed[i]) - expected, 2) / expected;
    ++out.bins;
  }
  if (small_expected > 0) {
    out.statistic += std::pow(static_cast<double>(small_observed) - small_expected, 2) / small_expected;
    ++out.bins;
  }
  const double df = out.bins - 1;
  out.critical = df * std::pow(1 - 2 / (9 * df) + kZ * std::sqrt(2 / (9 * df)), 3);
  return out;
}

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

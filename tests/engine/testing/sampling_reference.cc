#include "tests/engine/testing/sampling_reference.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace supra::testing {
namespace {

// Upper 1e-4 quantile of the standard normal.
constexpr double kZ = 3.719016485;

}  // namespace

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

}  // namespace supra::testing

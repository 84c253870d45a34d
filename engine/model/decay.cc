#include "engine/model/decay.h"

#include <cmath>

namespace supra {
namespace {

// Lightning-attention slopes for a power-of-two head count n, starting at s0
// (or at the ratio itself when s0 is unset).
std::vector<double> PowerOfTwoSlopes(int n, std::optional<double> s0) {
  const double ratio = std::exp2(-8.0 / n);
  const double start = s0.value_or(ratio);
  std::vector<double> slopes(n);
  for (int h = 0; h < n; ++h) slopes[h] = start * std::pow(ratio, h);
  return slopes;
}

// The ALiBi/lightning rule for any head count: the slopes of the largest power
// of two P <= n, then every other slope of the 2P list (default start).
std::vector<double> LightningSlopes(int n, std::optional<double> s0) {
  int p = 1;
  while (p * 2 <= n) p *= 2;
  std::vector<double> slopes = PowerOfTwoSlopes(p, s0);
  if (p == n) return slopes;
  const std::vector<double> extra = LightningSlopes(2 * p, std::nullopt);
  for (size_t i = 0; static_cast<int>(slopes.size()) < n; i += 2) slopes.push_back(extra[i]);
  return slopes;
}

}  // namespace

std::vector<double> DecaySlopes(const ModelConfig& config) {
  const int h = config.n_heads;
  if (!config.use_decay) return std::vector<double>(h, 0.0);
  if (config.use_retnet_slopes) {
    std::vector<double> slopes(h);
    for (int i = 0; i < h; ++i) slopes[i] = -std::log1p(-std::exp2(-5.0 - i));
    return slopes;
  }
  return LightningSlopes(h, config.decay_start);
}

std::vector<double> DecayGammas(const ModelConfig& config) {
  std::vector<double> gammas = DecaySlopes(config);
  for (double& g : gammas) g = std::exp(-g);
  return gammas;
}

}  // namespace supra

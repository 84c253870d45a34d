// The per-token loops are `omp simd` loops: compiled with -fopenmp-simd and
// -fno-trapping-math (CMakeLists.txt) they vectorize at -O2, where GCC's
// default cost model leaves loops of unknown length scalar.
#include "engine/sampling/dense_distribution.h"

#include <algorithm>
#include <array>

#include "engine/sampling/fast_exp.h"

namespace supra::sampling_internal {
namespace {

// Tokens per block of the two-level inverse CDF: Draw scans block sums, then
// one block, instead of the whole vocabulary.
constexpr size_t kBlock = 1024;

// Top-p bins: kBinsPerNat bins per unit of -log(weight), kBins of them
// (weights down to e^-16), then one bin for everything lighter.
constexpr int kBinsPerNat = 4;
constexpr int kBins = 64;

double SumRange(const float* w, size_t n) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (size_t i = 0; i < n; ++i) sum += w[i];
  return sum;
}

}  // namespace

void DenseDistribution::Build(absl::Span<const float> logits, float max_logit, float inv_temperature) {
  const size_t n = logits.size();
  weights_.resize(n);
  const float* l = logits.data();
  float* w = weights_.data();
#pragma omp simd
  for (size_t i = 0; i < n; ++i) w[i] = ExpNonPositive((l[i] - max_logit) * inv_temperature);
  SumBlocks();
}

void DenseDistribution::SumBlocks() {
  const size_t n = weights_.size();
  block_sums_.resize((n + kBlock - 1) / kBlock);
  for (size_t b = 0; b < block_sums_.size(); ++b) {
    const size_t begin = b * kBlock;
    block_sums_[b] = SumRange(weights_.data() + begin, std::min(kBlock, n - begin));
  }
}

void DenseDistribution::KeepTopP(absl::Span<const float> logits, float max_logit, float inv_temperature, double top_p) {
  const size_t n = logits.size();
  // Bin of each token by its weight's -log, computed once so that every pass
  // agrees on it. -inf logits land in the last bin.
  bins_.resize(n);
  const float* l = logits.data();
  uint8_t* bins = bins_.data();
  const float scale = inv_temperature * kBinsPerNat;
#pragma omp simd
  for (size_t i = 0; i < n; ++i) {
    const float scaled = (max_logit - l[i]) * scale;  // >= 0
    bins[i] = scaled < static_cast<float>(kBins) ? static_cast<uint8_t>(static_cast<int>(scaled)) : kBins;
  }
  // Weight per bin; interleaved tables so that runs of tokens in one bin do
  // not serialise on one accumulator.
  constexpr size_t kTables = 4;
  std::array<std::array<double, kBins + 1>, kTables> table_mass{};
  for (size_t i = 0; i < n; ++i) table_mass[i % kTables][bins[i]] += weights_[i];
  std::array<double, kBins + 1> mass{};
  double total = 0;
  for (int b = 0; b <= kBins; ++b) {
    for (size_t j = 0; j < kTables; ++j) mass[b] += table_mass[j][b];
    total += mass[b];
  }
  const double target = top_p * total;
  // The cut falls in the first bin that brings the mass to the target.
  int cut_bin = 0;
  double before_cut = 0;
  while (cut_bin <= kBins && before_cut + mass[cut_bin] < target) before_cut += mass[cut_bin++];
  if (cut_bin > kBins) return;  // rounding kept the sum short of the target: keep all

  // Lighter bins go; the cut bin's tokens are kept most likely first until
  // the mass reaches the target.
  float* w = weights_.data();
  const auto cut = static_cast<uint8_t>(cut_bin);
#pragma omp simd
  for (size_t i = 0; i < n; ++i) w[i] = bins[i] > cut ? 0.0f : w[i];
  boundary_.clear();
  for (size_t i = 0; i < n; ++i) {
    if (bins[i] == cut) boundary_.push_back({l[i], w[i], static_cast<int32_t>(i)});
  }
  std::sort(boundary_.begin(), boundary_.end(), MoreLikely);
  double cumulative = before_cut;
  for (const Candidate& c : boundary_) {
    if (cumulative >= target) {
      weights_[c.id] = 0;
    } else {
      cumulative += c.weight;
    }
  }
  SumBlocks();
}

void DenseDistribution::DropBelow(float min_weight) {
  float* w = weights_.data();
  const size_t n = weights_.size();
#pragma omp simd
  for (size_t i = 0; i < n; ++i) w[i] = w[i] < min_weight ? 0.0f : w[i];
  SumBlocks();
}

int32_t DenseDistribution::Draw(double u) const {
  double total = 0;
  for (const double s : block_sums_) total += s;
  const double target = u * total;
  double before = 0;
  size_t block = 0;
  while (block + 1 < block_sums_.size() && before + block_sums_[block] <= target) before += block_sums_[block++];
  const size_t begin = block * kBlock;
  const size_t end = std::min(weights_.size(), begin + kBlock);
  double cumulative = before;
  for (size_t i = begin; i < end; ++i) {
    cumulative += weights_[i];
    if (target < cumulative) return static_cast<int32_t>(i);
  }
  // Rounding put the target past this block's last token: take the last
  // token with weight at or before it (there is one: the top token weighs 1).
  for (size_t i = end; i-- > 0;) {
    if (weights_[i] > 0) return static_cast<int32_t>(i);
  }
  return 0;
}

}  // namespace supra::sampling_internal

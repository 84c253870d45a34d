// Exact references for sampler tests (CPU and GPU): the target distribution
// of sampling_params.h computed independently (full sort, double precision),
// and Pearson's goodness-of-fit statistic with its critical value.
#ifndef SUPRA_TESTS_ENGINE_TESTING_SAMPLING_REFERENCE_H_
#define SUPRA_TESTS_ENGINE_TESTING_SAMPLING_REFERENCE_H_

#include <cstdint>
#include <vector>

#include "engine/sampling/sampling_params.h"

namespace supra::testing {

// The probability of every token under `p` (penalties over the last
// penalty_window tokens of `history`, temperature, top-k, top-p, min-p).
std::vector<double> TargetDistribution(const std::vector<float>& logits, const SamplingParams& p,
                                       const std::vector<int32_t>& history = {});

// Pearson's statistic over bins of expected count >= 5 (the rest merged into
// one bin), and its Wilson-Hilferty critical value at p = 1e-4: a correct
// sampler fails once in 10,000 seeds, and the tests' seeds are fixed.
struct ChiSquare {
  double statistic = 0;
  double critical = 0;
  int bins = 0;
};
ChiSquare Fit(const std::vector<int64_t>& observed, const std::vector<double>& target, int64_t n);

}  // namespace supra::testing

#endif  // SUPRA_TESTS_ENGINE_TESTING_SAMPLING_REFERENCE_H_

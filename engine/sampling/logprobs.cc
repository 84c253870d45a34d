// The sums are `omp simd` loops: compiled with -fopenmp-simd and
// -fno-trapping-math (CMakeLists.txt) they vectorize at -O2.
#include "engine/sampling/logprobs.h"

#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/sampling/fast_exp.h"

namespace supra {

absl::StatusOr<Logprobs> LogprobsCalculator::Compute(absl::Span<const float> logits, int32_t chosen, int32_t top_n) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const auto vocab = static_cast<int64_t>(logits.size());
  if (chosen < 0 || chosen >= vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("logprobs: chosen token ", chosen, " is outside the vocabulary [0, ", vocab, ")"));
  }
  if (top_n < 0) return absl::InvalidArgumentError(absl::StrCat("logprobs: top_n must be >= 0, got ", top_n));

  const float* l = logits.data();
  float max_logit = -kInf;
  int bad = 0;
#pragma omp simd reduction(max : max_logit) reduction(| : bad)
  for (int64_t i = 0; i < vocab; ++i) {
    bad |= static_cast<int>(!(l[i] < kInf));  // NaN or +inf
    max_logit = l[i] > max_logit ? l[i] : max_logit;
  }
  if (bad) {
    for (int64_t i = 0; i < vocab; ++i) {
      if (!(l[i] < kInf)) return absl::InvalidArgumentError(absl::StrCat("logprobs: logit of token ", i, " is ", l[i]));
    }
  }
  if (max_logit == -kInf) return absl::InvalidArgumentError("logprobs: every logit is -inf");

  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < vocab; ++i) sum += sampling_internal::ExpNonPositive(l[i] - max_logit);
  const double log_z = max_logit + std::log(sum);
  auto logprob = [log_z](float logit) { return static_cast<float>(static_cast<double>(logit) - log_z); };

  Logprobs out;
  out.chosen = logprob(l[chosen]);
  if (top_n == 0) return out;
  top_.SelectTopK(logits, top_n, max_logit, 1.0f);
  top_.Sort();
  out.top.reserve(top_.candidates().size());
  for (const sampling_internal::Candidate& c : top_.candidates()) out.top.push_back({c.id, logprob(c.logit)});
  return out;
}

}  // namespace supra

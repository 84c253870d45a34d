// MaxLogit is an `omp simd` loop: compiled with -fopenmp-simd and
// -fno-trapping-math (CMakeLists.txt) it vectorizes at -O2.
#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/sampling/penalties.h"
#include "engine/sampling/philox.h"
#include "engine/util/status_macros.h"

namespace supra {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// The largest logit; INVALID_ARGUMENT for a NaN or +inf logit (naming the
// first) or when every logit is -inf.
absl::StatusOr<float> MaxLogit(absl::Span<const float> logits) {
  // No early exit, so the loop vectorizes; the rare failure is located by a
  // second pass.
  float max = -kInf;
  int bad = 0;
  const float* l = logits.data();
  const size_t n = logits.size();
#pragma omp simd reduction(max : max) reduction(| : bad)
  for (size_t i = 0; i < n; ++i) {
    const float x = l[i];
    bad |= static_cast<int>(!(x < kInf));  // NaN or +inf
    max = x > max ? x : max;
  }
  if (bad) {
    for (size_t k = 0; k < logits.size(); ++k) {
      if (std::isnan(logits[k]) || logits[k] == kInf) {
        return absl::InvalidArgumentError(absl::StrCat("sampling: logit of token ", k, " is ", logits[k]));
      }
    }
  }
  if (max == -kInf) return absl::InvalidArgumentError("sampling: every logit is -inf");
  return max;
}

}  // namespace

absl::StatusOr<int32_t> Sampler::Sample(absl::Span<const float> logits, const SamplingParams& params,
                                        absl::Span<const int32_t> history, int64_t token_index) {
  RETURN_IF_ERROR(ValidateSamplingParams(params));
  if (logits.empty()) return absl::InvalidArgumentError("sampling: empty logits");
  if (token_index < 0) return absl::InvalidArgumentError(absl::StrCat("sampling: token_index ", token_index, " < 0"));

  logits_.assign(logits.begin(), logits.end());
  RETURN_IF_ERROR(ApplyPenalties(params, history, absl::MakeSpan(logits_)));
  ASSIGN_OR_RETURN(const float max_logit, MaxLogit(logits_));

  if (params.temperature == 0.0f) {
    // The first maximum is the lowest id among ties.
    return static_cast<int32_t>(std::find(logits_.begin(), logits_.end(), max_logit) - logits_.begin());
  }

  const float inv_temperature = 1.0f / params.temperature;
  const double u = UniformForToken(params.seed, static_cast<uint64_t>(token_index));
  // Weights are relative to the most likely token's 1, so min-p's threshold
  // min_p * p(most likely) is min_p itself in weight units.
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < logits_.size()) {
    top_k_.SelectTopK(logits_, params.top_k, max_logit, inv_temperature);
    // The draw walks the candidates most likely first (ties: lowest id), a
    // canonical order the GPU sampler follows too; KeepTopP sorts them itself.
    if (params.top_p < 1.0f) {
      top_k_.KeepTopP(params.top_p);
    } else {
      top_k_.Sort();
    }
    if (params.min_p > 0.0f) top_k_.DropBelow(params.min_p);
    return top_k_.Draw(u);
  }
  dense_.Build(logits_, max_logit, inv_temperature);
  if (params.top_p < 1.0f) dense_.KeepTopP(logits_, max_logit, inv_temperature, params.top_p);
  if (params.min_p > 0.0f) dense_.DropBelow(params.min_p);
  return dense_.Draw(u);
}

}  // namespace supra

// The sampler's distribution as a short list of candidates, for top-k: the k
// most likely tokens are selected in one pass, and the later steps cost
// O(k log k) instead of O(vocab).
#ifndef SUPRA_ENGINE_SAMPLING_CANDIDATE_SET_H_
#define SUPRA_ENGINE_SAMPLING_CANDIDATE_SET_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "engine/sampling/candidate.h"

namespace supra::sampling_internal {

class CandidateSet {
 public:
  // Keeps the k most likely tokens with a finite logit (ties to the lowest id)
  // and weighs them exp((logit - max_logit) * inv_temperature); max_logit is
  // the maximum of `logits` (finite), so the top candidate weighs exactly 1.
  void SelectTopK(absl::Span<const float> logits, int32_t k, float max_logit, float inv_temperature);

  // Keeps the smallest set of most likely candidates whose weight reaches
  // top_p of the total.
  void KeepTopP(double top_p);

  // Drops the candidates whose weight is below `min_weight`.
  void DropBelow(float min_weight);

  // Inverse CDF at u * total weight, u in [0, 1), over the candidates.
  int32_t Draw(double u) const;

  // Most likely first (MoreLikely).
  void Sort();
  const std::vector<Candidate>& candidates() const { return candidates_; }

 private:
  std::vector<Candidate> candidates_;  // [<= k]
};

}  // namespace supra::sampling_internal

#endif  // SUPRA_ENGINE_SAMPLING_CANDIDATE_SET_H_

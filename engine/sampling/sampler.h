// The CPU sampler: one token id from one row of logits.
//
// Order (sampling_params.h): penalties -> temperature 0: greedy argmax (ties
// to the lowest id) -> temperature -> top-k -> softmax -> top-p -> min-p ->
// renormalise -> inverse-CDF draw with u = UniformForToken(seed, token_index)
// (philox.h) over the kept tokens.
//
// Cost for vocab V: a few linear passes over the logits whatever the
// parameters. Without top-k the distribution stays dense (one weight per id)
// and top-p bins tokens by weight, sorting only the bin where its cut falls;
// with top-k a heap (or nth_element for large k) selects the k best in one
// pass and the rest costs O(k log k).
#ifndef SUPRA_ENGINE_SAMPLING_SAMPLER_H_
#define SUPRA_ENGINE_SAMPLING_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/sampling/candidate_set.h"
#include "engine/sampling/dense_distribution.h"
#include "engine/sampling/sampling_params.h"

namespace supra {

class Sampler {
 public:
  // logits: [vocab], float32, as the model produced them (not modified).
  //   -inf marks a token that can never be drawn; NaN or +inf is
  //   INVALID_ARGUMENT, and so is a row where every logit is -inf.
  // history: the tokens before this one, most recent last; the penalties read
  //   the last params.penalty_window of them, so the whole history or any tail
  //   at least that long may be passed (see penalties.h).
  // token_index: the absolute index of the token being sampled within the
  //   request (0 for the first generated token), the counter of the draw.
  // INVALID_ARGUMENT for invalid params (ValidateSamplingParams).
  absl::StatusOr<int32_t> Sample(absl::Span<const float> logits, const SamplingParams& params,
                                 absl::Span<const int32_t> history, int64_t token_index);

 private:
  // Scratch reused across calls; a Sampler is not thread-safe (one per thread).
  std::vector<float> logits_;  // [vocab], penalised copy of the input
  sampling_internal::DenseDistribution dense_;
  sampling_internal::CandidateSet top_k_;
};

}  // namespace supra

#endif  // SUPRA_ENGINE_SAMPLING_SAMPLER_H_

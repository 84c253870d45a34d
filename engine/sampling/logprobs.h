// Log-probabilities for the logprobs option of the API.
#ifndef SUPRA_ENGINE_SAMPLING_LOGPROBS_H_
#define SUPRA_ENGINE_SAMPLING_LOGPROBS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/sampling/candidate_set.h"

namespace supra {

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;  // natural log
};

struct Logprobs {
  float chosen = 0;  // log p(the sampled token); -inf if its logit is -inf
  // The min(top_n, tokens with a finite logit) most likely tokens, most
  // likely first, ties to the lowest id.
  std::vector<TokenLogprob> top;
};

// Log-probabilities under the model's raw distribution, log_softmax(logits)
// of the row as the model produced it: before penalties, temperature and
// truncation, as OpenAI's API reports them. Cost: two vectorized passes over
// the vocabulary plus a top_n selection (see CandidateSet).
// Not thread-safe (scratch is reused); one per thread.
class LogprobsCalculator {
 public:
  // logits: [vocab], float32. INVALID_ARGUMENT for a NaN or +inf logit, a row
  // of only -inf, `chosen` outside [0, vocab) or top_n < 0.
  absl::StatusOr<Logprobs> Compute(absl::Span<const float> logits, int32_t chosen, int32_t top_n);

 private:
  sampling_internal::CandidateSet top_;
};

}  // namespace supra

#endif  // SUPRA_ENGINE_SAMPLING_LOGPROBS_H_

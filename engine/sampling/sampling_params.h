// Sampling parameters of one request, with documented defaults.
#ifndef SUPRA_ENGINE_SAMPLING_SAMPLING_PARAMS_H_
#define SUPRA_ENGINE_SAMPLING_SAMPLING_PARAMS_H_

#include <cstdint>

#include "absl/status/status.h"

namespace supra {

struct SamplingParams {
  // 0 selects greedy decoding (argmax, ties to the lowest id); > 0 divides logits.
  float temperature = 1.0f;
  // Keep the k most likely tokens; 0 disables.
  int32_t top_k = 0;
  // Keep the smallest set whose probability reaches top_p, in (0, 1].
  float top_p = 1.0f;
  // Drop tokens whose probability is below min_p * p(most likely), in [0, 1].
  float min_p = 0.0f;
  // CTRL-style repetition penalty (> 0; 1 disables): a logit l of a token seen
  // in the penalty window becomes l / r if l > 0, else l * r.
  float repetition_penalty = 1.0f;
  // OpenAI-style penalties in [-2, 2]: subtract presence_penalty once and
  // frequency_penalty * count for every token seen in the penalty window.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // How many of the most recent tokens of the session's history the penalties
  // look at (prompt and generated tokens alike); 0 means none.
  int32_t penalty_window = 256;
  // Random draws are keyed by (seed, token index), so a request's samples do
  // not depend on what else is in the batch.
  uint64_t seed = 0;
};

// INVALID_ARGUMENT naming the first field out of range.
absl::Status ValidateSamplingParams(const SamplingParams& params);

}  // namespace supra

#endif  // SUPRA_ENGINE_SAMPLING_SAMPLING_PARAMS_H_

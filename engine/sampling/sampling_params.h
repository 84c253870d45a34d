// Sampling parameters of one request, with documented defaults, and the order
// in which the sampler (sampler.h) applies them:
//   penalties -> (temperature 0: greedy) -> temperature -> top-k -> softmax
//   -> top-p -> min-p -> renormalise -> draw.
#ifndef SUPRA_ENGINE_SAMPLING_SAMPLING_PARAMS_H_
#define SUPRA_ENGINE_SAMPLING_SAMPLING_PARAMS_H_

#include <cstdint>

#include "absl/status/status.h"

namespace supra {

struct SamplingParams {
  // 0 selects greedy decoding (argmax, ties to the lowest id); > 0 divides
  // the (penalised) logits. Finite, >= 0.
  float temperature = 1.0f;
  // Keep the k most likely tokens (ties to the lowest id); 0 disables, and so
  // does any k >= the vocabulary size.
  int32_t top_k = 0;
  // Keep the smallest set of most likely tokens whose probability reaches
  // top_p (always at least one), in (0, 1]; 1 disables.
  float top_p = 1.0f;
  // Drop tokens whose probability is below min_p * p(most likely), in [0, 1];
  // 0 disables. Applied after top-k and top-p.
  float min_p = 0.0f;
  // CTRL-style repetition penalty (finite, > 0; 1 disables): a logit l of a
  // token seen in the penalty window becomes l / r if l > 0, else l * r.
  float repetition_penalty = 1.0f;
  // OpenAI-style penalties in [-2, 2], applied after the repetition penalty:
  // a token seen c >= 1 times in the penalty window loses
  // presence_penalty + frequency_penalty * c from its logit.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // How many of the most recent tokens of the session's history the penalties
  // look at (prompt and generated tokens alike); 0 means none. >= 0.
  int32_t penalty_window = 256;
  // Random draws are keyed by (seed, token index) through Philox4x32-10
  // (philox.h), so a request's samples do not depend on what else is in the
  // batch or on the order of calls.
  uint64_t seed = 0;
};

// INVALID_ARGUMENT naming the first field out of range and its value.
absl::Status ValidateSamplingParams(const SamplingParams& params);

}  // namespace supra

#endif  // SUPRA_ENGINE_SAMPLING_SAMPLING_PARAMS_H_

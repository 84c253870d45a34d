// Repetition, presence and frequency penalties (sampling_params.h).
#ifndef SUPRA_ENGINE_SAMPLING_PENALTIES_H_
#define SUPRA_ENGINE_SAMPLING_PENALTIES_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/sampling/sampling_params.h"

namespace supra {

// Penalises `logits` [vocab] in place for every distinct token among the last
// params.penalty_window entries of `history` (most recent last; callers may
// pass the whole history or any tail at least that long). For such a token
// seen c times, with r = repetition_penalty:
//   l <- (l > 0 ? l / r : l * r) - presence_penalty - frequency_penalty * c
// A finite logit stays finite (clamped to +-FLT_MAX); -inf stays -inf.
// INVALID_ARGUMENT for an id in the window outside [0, vocab). `params` must
// be valid (ValidateSamplingParams).
absl::Status ApplyPenalties(const SamplingParams& params, absl::Span<const int32_t> history, absl::Span<float> logits);

}  // namespace supra

#endif  // SUPRA_ENGINE_SAMPLING_PENALTIES_H_

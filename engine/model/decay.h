// Per-head decay of the recurrent state (supra-model.md §3.8). Slopes and
// gammas are computed in float64; callers store float32.
#ifndef SUPRA_ENGINE_MODEL_DECAY_H_
#define SUPRA_ENGINE_MODEL_DECAY_H_

#include <vector>

#include "engine/model/config.h"

namespace supra {

// slope_h for h = 0..n_heads-1 (all zero when use_decay is false).
std::vector<double> DecaySlopes(const ModelConfig& config);

// gamma_h = exp(-slope_h) (all one when use_decay is false; the RetNet rule
// 1 - 2^(-5-h) when use_retnet_slopes).
std::vector<double> DecayGammas(const ModelConfig& config);

}  // namespace supra

#endif  // SUPRA_ENGINE_MODEL_DECAY_H_

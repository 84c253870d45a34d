// The SUPRA kernel feature map after its projection, the optional qk norm and
// the rotary embedding, for the queries and the keys of one layer in one
// launch (§3.3-§3.7). Same semantics as cpu::FeatureMap, cpu::QkNorm,
// cpu::RopeAngles and cpu::ApplyRope, in the same order:
//   fq = rope(qknorm(ReLU(fq_pre + bq)))
//   fk = rope(qknorm(expand(ReLU(fk_pre + bk)))) / sqrt(F)
// Without qk norm, fk keeps the Hkv key heads (the expansion to query heads
// is logical, left to the attention). With qk norm, every query head gets its
// own key (head h copies kv head h / (H / Hkv) before the norm), so fk has H
// heads; the norms run over the whole flattened [H·F] row, not per head.
// RoPE angles θ = p · inv_freq are formed and reduced modulo 2π in float64, so
// positions up to 2^31 − 1 keep their precision; cos and sin of the reduced
// angle are taken in float (within 4e-7 of the CPU's float64 values).
#ifndef SUPRA_ENGINE_CUDA_FEATURE_MAP_ROPE_H_
#define SUPRA_ENGINE_CUDA_FEATURE_MAP_ROPE_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace supra::cuda {

struct FeatureMapRopeShape {
  int heads = 0;     // H
  int kv_heads = 0;  // Hkv (H % Hkv == 0)
  int features = 0;  // F (even; == Dh for rotary)
};

// q_norm and k_norm are both given (apply_qk_norm, RMSNorm with `eps`) or
// both null. Positions are validated by the caller (0 <= p <= 2^31 − 1, as
// cpu::RopeAngles checks); larger ones are still computed, not refused.
// fq may be fq_pre itself and, without qk norm, fk may be fk_pre (in place);
// no other overlap is allowed. INVALID_ARGUMENT for null pointers (with
// n > 0), a bad shape or a lone norm weight.
// Launched with programmatic dependent launch (programmatic_launch.cuh): the
// RoPE tables are computed from positions and inv_freq while the previous
// kernel finishes, so those two must not be written by the kernel just
// before in the stream (the backend uploads them with copies); the
// projections are read after the wait.
absl::Status LaunchFeatureMapRope(const FeatureMapRopeShape& shape,
                                  const float* fq_pre,       // [n, H·F], fp32: q · W_eᵀ (no bias)
                                  const float* bq,           // [H·F], fp32
                                  const float* fk_pre,       // [n, Hkv·F], fp32: k · W_kvᵀ (no bias)
                                  const float* bk,           // [Hkv·F], fp32
                                  const int64_t* positions,  // [n], int64, device
                                  const double* inv_freq,    // [F/2], float64, device (cpu::RopeInverseFrequencies)
                                  const float* q_norm,       // [H·F], fp32, or nullptr
                                  const float* k_norm,       // [H·F], fp32, or nullptr
                                  double eps,                // norm_eps of the qk norm
                                  int64_t n,
                                  float* fq,  // [n, H·F], fp32
                                  float* fk,  // [n, Hk·F], fp32; Hk = H with qk norm, else Hkv
                                  cudaStream_t stream);

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_FEATURE_MAP_ROPE_H_

// Deterministic pseudo-random fills on the device (benchmark weights).
#ifndef SUPRA_ENGINE_CUDA_RANDOM_FILL_H_
#define SUPRA_ENGINE_CUDA_RANDOM_FILL_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace supra::cuda {

// data[i] = center + scale · u_i with u_i uniform in [-1, 1), a hash of (seed, i).
absl::Status LaunchFillUniformBf16(__nv_bfloat16* data,  // [count]
                                   int64_t count, uint64_t seed, float center, float scale, cudaStream_t stream);
absl::Status LaunchFillUniformF32(float* data,  // [count]
                                  int64_t count, uint64_t seed, float center, float scale, cudaStream_t stream);

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_RANDOM_FILL_H_

// The SwiGLU activation of the feed-forward block (§3.12): the hidden layer
// between w12 and w3.
#ifndef SUPRA_ENGINE_CUDA_SWIGLU_H_
#define SUPRA_ENGINE_CUDA_SWIGLU_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace supra::cuda {

// out = bf16(silu(a) · b), computed in fp32 as cpu::SwiGlu does
// (silu(a) = a / (1 + e^−a)), where ab holds a (W1·g) and b (W2·g) with its
// columns interleaved in groups of 8 (w12_layout.h), as a GEMM over the
// device's w12 leaves them: the prefill path (cuBLAS) and decode batches
// beyond the GEMV; smaller ones fuse this into the projection
// (LaunchGemvSwiGlu). INVALID_ARGUMENT for null pointers (with n > 0) or
// sizes out of range. Launched with programmatic dependent launch
// (programmatic_launch.cuh); nothing is read before the wait.
absl::Status LaunchSwiGlu(const __nv_bfloat16* ab,  // [n, 2·ffn], bf16, interleaved (w12_layout.h)
                          int64_t n, int64_t ffn,
                          __nv_bfloat16* out,  // [n, ffn], bf16
                          cudaStream_t stream);

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_SWIGLU_H_

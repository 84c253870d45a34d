// RMSNorm of the fp32 residual stream (§3.1, §3.12, the final norm and
// post_embed_norm): y = x / sqrt(mean(x²) + eps) ⊙ weight, row by row.
//
// As in cpu::RmsNorm, the mean of squares is accumulated in float64 and each
// output is float(x · inv_rms) · weight, so the fp32 variant matches the CPU
// to about an ulp and the bf16 variants differ from it only by the final
// rounding to bf16.
//
// Every variant is launched with programmatic dependent launch
// (programmatic_launch.cuh): it reads the norm weight while the previous
// kernel finishes (so `weight` must not be written by that kernel) and waits
// for it before it touches x, delta or out.
#ifndef SUPRA_ENGINE_CUDA_RMS_NORM_H_
#define SUPRA_ENGINE_CUDA_RMS_NORM_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace supra::cuda {

// out = bf16(RMSNorm(x) ⊙ weight): the input of the next projection.
// Strides are in elements (>= dim). INVALID_ARGUMENT for null pointers (with
// n > 0), non-positive or too large sizes, or strides below dim.
absl::Status LaunchRmsNorm(const float* x,  // [n, dim] (row stride x_stride), fp32
                           int64_t x_stride,
                           const float* weight,  // [dim], fp32
                           int64_t n, int64_t dim, double eps,
                           __nv_bfloat16* out,  // [n, dim] (row stride out_stride), bf16
                           int64_t out_stride, cudaStream_t stream);

// Residual add fused with the norm: x += delta (written back to x), then
// out = bf16(RMSNorm(x) ⊙ weight). delta == nullptr skips the add (then
// delta_stride is ignored). The add is one float addition per element, the
// same as a float residual add elsewhere.
absl::Status LaunchAddRmsNorm(float* x,  // [n, dim] (row stride x_stride), fp32, updated in place
                              int64_t x_stride,
                              const float* delta,  // [n, dim] (row stride delta_stride), fp32, or nullptr
                              int64_t delta_stride,
                              const float* weight,  // [dim], fp32
                              int64_t n, int64_t dim, double eps,
                              __nv_bfloat16* out,  // [n, dim] (row stride out_stride), bf16
                              int64_t out_stride, cudaStream_t stream);

// y = RMSNorm(x) ⊙ weight in fp32 (post_embed_norm normalises the residual
// stream itself). y may be x itself (then y_stride must equal x_stride).
absl::Status LaunchRmsNormF32(const float* x,  // [n, dim] (row stride x_stride), fp32
                              int64_t x_stride,
                              const float* weight,  // [dim], fp32
                              int64_t n, int64_t dim, double eps,
                              float* y,  // [n, dim] (row stride y_stride), fp32
                              int64_t y_stride, cudaStream_t stream);

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_RMS_NORM_H_

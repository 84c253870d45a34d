// Small-batch projections (decode): y[n, out] (= or +=) x[n, in] · W[out, in]ᵀ
// (+ bias) for n ≤ 16, with bf16 x and W, fp32 accumulation and an fp32 or
// bf16 y. At these batch sizes the product is bound by reading W once, so the
// kernel streams W with 16-byte loads and feeds the tensor cores (mma.sync)
// straight from registers; see gemv.cu for the layout.
//
// Rounding: products of bf16 values are exact in fp32 and the sums are fp32,
// but the order of summation differs from cpu::Linear (split over warps and
// k-steps), so results agree with it to about 1e-6 relative per term, not
// bit for bit. Results do not depend on n or on the other rows of the batch:
// every output element is computed by the same instruction sequence.
#ifndef SUPRA_ENGINE_CUDA_GEMV_H_
#define SUPRA_ENGINE_CUDA_GEMV_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace supra::cuda {

// Largest batch the GEMV kernel takes; larger ones belong to cuBLAS.
inline constexpr int64_t kGemvMaxRows = 16;

// y = x · Wᵀ (+ bias), or y += x · Wᵀ (+ bias) with accumulate (the residual
// adds into the fp32 stream; with a bf16 y the sum is rounded once to bf16).
// Strides are in elements. The fast path needs in % 8 == 0, 16-byte aligned
// x and W and an x_stride that is a multiple of 8; anything else takes a
// slower scalar path with the same results. y must not overlap x, W or bias.
// INVALID_ARGUMENT (before any launch) for null pointers, n outside [1, 16],
// in or out outside [1, 2^30], or strides below in / out.
//
// programmatic_launch (programmatic dependent launch, sm_90): on the fast
// path, the kernel may start while the previous kernel in the stream is
// still finishing, and uses that time to have L2 fetch its first weights; it
// waits for that kernel to complete before it reads x, bias or y, so stream
// order is kept. Every launch lets a next kernel launched this way start
// during its epilogue.
absl::Status LaunchGemv(const __nv_bfloat16* x,  // [n, in], row stride x_stride, bf16
                        int64_t x_stride,
                        const __nv_bfloat16* w,  // [out, in], contiguous (nn.Linear layout), bf16
                        const float* bias,       // [out], fp32, or nullptr
                        void* y,                 // [n, out], row stride y_stride; fp32, or bf16 with y_is_bf16
                        int64_t y_stride, bool y_is_bf16, int64_t n, int64_t in, int64_t out, bool accumulate,
                        cudaStream_t stream, bool programmatic_launch = true);

// One projection of a grouped launch: y[n, out] (= or +=) x[n, in] · W[out, in]ᵀ
// (+ bias), with the same meaning and limits as LaunchGemv's arguments.
struct GemvProblem {
  const __nv_bfloat16* x = nullptr;  // [n, in], row stride x_stride, bf16
  int64_t x_stride = 0;
  const __nv_bfloat16* w = nullptr;  // [out, in], contiguous, bf16
  const float* bias = nullptr;       // [out], fp32, or nullptr
  void* y = nullptr;                 // [n, out], row stride y_stride
  int64_t y_stride = 0;
  int64_t in = 0, out = 0;
};

// Two independent projections with the same n, output dtype and accumulate
// mode in one launch (the feature-map projections of q and of k): the grid
// holds the blocks of both, so the smaller one costs neither a launch nor a
// wave of its own. The k split is chosen from both shapes together (never
// from n), so results are batch invariant; at Mistral-SUPRA's shapes it is
// the split each projection gets alone, so they are bit-identical to two
// LaunchGemv calls. The y of one must not overlap any operand of the other.
absl::Status LaunchGemvPair(const GemvProblem& first, const GemvProblem& second, bool y_is_bf16, int64_t n,
                            bool accumulate, cudaStream_t stream, bool programmatic_launch = true);

// The feed-forward hidden layer in one launch: out = bf16(silu(a) · b) with
// a = W1·x and b = W2·x, from the interleaved w12 (w12_layout.h; [2·ffn, in],
// bf16). Each of a and b is rounded to bf16 before the activation, so the
// result is bit-identical to LaunchGemv into a bf16 ab followed by
// LaunchSwiGlu. Same limits as LaunchGemv (n in [1, 16], 2·ffn rows);
// INVALID_ARGUMENT also for out_stride < ffn.
absl::Status LaunchGemvSwiGlu(const __nv_bfloat16* x,  // [n, in], row stride x_stride, bf16
                              int64_t x_stride,
                              const __nv_bfloat16* w12,  // [2·ffn, in], interleaved (w12_layout.h), bf16
                              __nv_bfloat16* out,        // [n, ffn], row stride out_stride, bf16
                              int64_t out_stride, int64_t n, int64_t in, int64_t ffn, cudaStream_t stream,
                              bool programmatic_launch = true);

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_GEMV_H_

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
// programmatic_launch (programmatic dependent launch, sm_90): for matrices
// of fewer than 16384 rows on the fast path, the kernel may start while the
// previous kernel in the stream is still finishing, and uses that time to
// have L2 fetch its first weights; it waits for that kernel to complete
// before it reads x, bias or y, so stream order is kept. (Larger matrices
// gain nothing from it and always launch serialised.) Every launch lets a
// next kernel launched this way start during its epilogue.
absl::Status LaunchGemv(const __nv_bfloat16* x,  // [n, in], row stride x_stride, bf16
                        int64_t x_stride,
                        const __nv_bfloat16* w,  // [out, in], contiguous (nn.Linear layout), bf16
                        const float* bias,       // [out], fp32, or nullptr
                        void* y,                 // [n, out], row stride y_stride; fp32, or bf16 with y_is_bf16
                        int64_t y_stride, bool y_is_bf16, int64_t n, int64_t in, int64_t out, bool accumulate,
                        cudaStream_t stream, bool programmatic_launch = true);

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_GEMV_H_

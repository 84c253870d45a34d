// silu(a) · b exactly as cpu::SwiGlu computes it, shared by the SwiGLU kernel
// and the GEMV's fused SwiGLU epilogue so that both round identically.
// Included by .cu files only (device code).
#ifndef SUPRA_ENGINE_CUDA_SILU_CUH_
#define SUPRA_ENGINE_CUDA_SILU_CUH_

namespace supra::cuda {

// a / (1 + e^−a) · b; for a → −∞ this is −0. The _rn intrinsics keep nvcc
// from contracting the addition into an FMA with the tail of expf, which
// could differ between the two call sites' code.
__device__ __forceinline__ float SiluMul(float a, float b) {
  return __fmul_rn(__fdiv_rn(a, __fadd_rn(1.0f, expf(-a))), b);
}

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_SILU_CUH_

// Device helpers of the two-pass chunked attention kernels
// (chunked_attention_two_pass.cu, chunked_attention_outputs.cu): 3xTF32
// operand splitting, the m16n8k8 tf32 mma, the warp roles of the score
// matrix, and the sub-chunk tile loads. Included by those .cu files only (it
// has device code).
//
// Accuracy of 3xTF32 (against fp32 arithmetic): an fp32 operand is split into
// hi = tf32(a) and lo = tf32(a − hi), and a·b ≈ lo_a·hi_b + hi_a·lo_b +
// hi_a·hi_b (small terms first); V is bf16, exact in tf32 (lo = 0), so the
// products with V take two mma instead of three. A product misses lo_a·lo_b
// and the rounding of the lo parts, at most ~2^-21 of |a·b| each; the tensor
// core accumulates each mma's eight products into fp32 (truncating rather
// than rounding: up to an ulp of the running sum per mma). A state update sums
// 64 products in 16 mma per element and is added to the carried state with
// one fp32 fma, so its error stays around 16·2^-23 ≈ 2e-6 of the update's
// magnitude, below the 1e-5 (of the largest state value) the tests allow;
// scores and outputs see 16-48 mma per element, far below bf16 output
// rounding. (A one-pass 3xTF32 kernel, chunked_attention_tc.cu, used the same
// helpers until 2026-11-29; it ran 0.8-0.95× the SIMT kernel's speed on the
// H200 and was removed when the two-pass kernels replaced it.)
#ifndef SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_MMA_CUH_
#define SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_MMA_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/attention_common.cuh"
#include "engine/cuda/chunked_attention.h"

namespace supra::cuda::attention_internal {

// ---- 3xTF32 ----------------------------------------------------------------

// x rounded to the nearest tf32 (ties away from zero), as the bits of an fp32
// whose low 13 bits are zero.
__device__ __forceinline__ uint32_t RoundTf32(float x) { return (__float_as_uint(x) + 0x1000u) & 0xffffe000u; }

// x = hi + lo + O(2^-22 |x|), both exact tf32 values.
__device__ __forceinline__ void SplitTf32(float x, uint32_t& hi, uint32_t& lo) {
  hi = RoundTf32(x);
  lo = RoundTf32(x - __uint_as_float(hi));  // the difference is exact in fp32
}

// A bf16 as the bits of the equal fp32 (an exact tf32).
__device__ __forceinline__ uint32_t Bf16Bits(uint16_t b) { return static_cast<uint32_t>(b) << 16; }

// d += a·b for one m16n8k8 tile. Fragments (g = lane / 4, t = lane % 4):
// a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4);
// b0 (k t, n g), b1 (k t + 4, n g); d0 (g, 2t), d1 (g, 2t + 1), d2 (g + 8, 2t), d3 (g + 8, 2t + 1).
__device__ __forceinline__ void Mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// d += a·b with both operands split: the two small products first.
__device__ __forceinline__ void Mma3(float (&d)[4], const uint32_t (&ah)[4], const uint32_t (&al)[4], uint32_t bh0,
                                     uint32_t bh1, uint32_t bl0, uint32_t bl1) {
  Mma(d, al, bh0, bh1);
  Mma(d, ah, bl0, bl1);
  Mma(d, ah, bh0, bh1);
}

// d += a·b with b exact in tf32 (bf16 values).
__device__ __forceinline__ void Mma2(float (&d)[4], const uint32_t (&ah)[4], const uint32_t (&al)[4], uint32_t b0,
                                     uint32_t b1) {
  Mma(d, al, b0, b1);
  Mma(d, ah, b0, b1);
}

// Row block (rows [16·rb, +16)) and column half of a 64×64 sub-chunk score
// matrix per warp of 8, packed 4 bits
// (rb) and 1 bit (half) per warp. Warps w and w + 4 share an SM
// sub-partition; the scores' work per role (3-mma tiles per feature step,
// the diagonal skipped) is rb0: 4 + 2 (halves 0 + 1), rb1: 6 + 2, rb2: 6 + 4,
// rb3: 6 + 6, so heavy roles are paired with light ones (sums 8, 8, 10, 10
// instead of up to 12 with w → (w / 2, w % 2)).
constexpr uint32_t kWarpRowBlocks = 0x20102133u;  // w0..w7: 3 3 1 2 0 1 0 2
constexpr uint32_t kWarpHalves = 0xB2u;           // w0..w7: 0 1 0 0 1 1 0 1
constexpr bool WarpRolesAreABijection() {
  uint32_t seen = 0;
  for (int w = 0; w < 8; ++w) seen |= 1u << ((kWarpRowBlocks >> (4 * w) & 0xFu) * 2 + (kWarpHalves >> w & 1u));
  return seen == 0xFFu;
}
static_assert(WarpRolesAreABijection(), "every (row block, half) role exactly once");

// ---- sub-chunk tile loads (cp.async wrappers: attention_common.cuh) ---------

// dst[i][f] = src[i][f] for i < len, f < F, zero for i >= len, over
// kChunkedAttentionSubChunk rows, with `threads` threads. Vector path
// (F % 4 == 0, 16-byte aligned rows): asynchronous copies (complete after the
// caller's commit and wait), leaving the padding columns [F, f_pad) as they
// are (the caller zeroes them). Otherwise plain loads, writing zeros to the
// padding columns.
template <int kThreads>
__device__ __forceinline__ void LoadQkTile(const float* __restrict__ src,  // [len, ld]
                                           int64_t ld, int len, int f_dim, int f_pad, int ld_dst, bool vec,
                                           float* __restrict__ dst) {  // [kT, ld_dst]
  constexpr int kT = kChunkedAttentionSubChunk;
  if (vec) {
    const int f4s = f_dim / 4;
    for (int u = threadIdx.x; u < kT * f4s; u += kThreads) {
      const int i = u / f4s, f = u % f4s * 4;
      const bool valid = i < len;
      CpAsync16(dst + i * ld_dst + f, valid ? src + i * ld + f : src, valid);
    }
  } else {
    for (int u = threadIdx.x; u < kT * f_pad; u += kThreads) {
      const int i = u / f_pad, f = u % f_pad;
      dst[i * ld_dst + f] = i < len && f < f_dim ? __ldg(src + i * ld + f) : 0.0f;
    }
  }
}

// A V tile dst[j][c] = v[j][d0 + c] for c < cols (a multiple of 8), zero for
// j >= len or d0 + c >= Dv, over kChunkedAttentionSubChunk rows. Vector path:
// Dv % 8 == 0 and 16-byte aligned rows (asynchronous copies).
template <int kThreads>
__device__ __forceinline__ void LoadVTile(const __nv_bfloat16* __restrict__ v_rows,  // [len, v_stride]
                                          int64_t v_stride, int len, int d0, int dv, int cols, int ld_dst, bool vec,
                                          __nv_bfloat16* __restrict__ dst) {  // [kT, ld_dst]
  constexpr int kT = kChunkedAttentionSubChunk;
  if (vec) {
    const int c8s = cols / 8;
    if (kT * c8s == kThreads) {  // one copy per thread (a 32-column tile): no loop
      const int j = threadIdx.x / c8s, c = threadIdx.x % c8s * 8;
      const bool valid = j < len && d0 + c < dv;
      CpAsync16(dst + j * ld_dst + c, valid ? v_rows + j * v_stride + d0 + c : v_rows, valid);
      return;
    }
    for (int u = threadIdx.x; u < kT * c8s; u += kThreads) {
      const int j = u / c8s, c = u % c8s * 8;
      const bool valid = j < len && d0 + c < dv;
      CpAsync16(dst + j * ld_dst + c, valid ? v_rows + j * v_stride + d0 + c : v_rows, valid);
    }
  } else {
    for (int e = threadIdx.x; e < kT * cols; e += kThreads) {
      const int j = e / cols, c = e % cols;
      dst[j * ld_dst + c] = j < len && d0 + c < dv ? v_rows[j * v_stride + d0 + c] : __float2bfloat16_rn(0.0f);
    }
  }
}

// Waits until at most kPending committed cp.async groups (the newest) are
// still pending.
template <int kPending>
__device__ __forceinline__ void CpAsyncWaitPending() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

inline bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace supra::cuda::attention_internal

#endif  // SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_MMA_CUH_

// The tensor-core (3xTF32) form of the chunked attention kernel, behind
// LaunchChunkedAttention (chunked_attention.h), which validates the arguments
// and picks it or the SIMT kernel. Declared here only for that dispatch.
//
// Layout: as the SIMT kernel, one 256-thread block per (32-column tile of
// Dv, head, chunk), the tiles of one (chunk, head) forming a cluster (at most
// 8 blocks), the chunk walked in sub-chunks of 64 rows. Differences:
// - Every product runs on mma.sync.m16n8k8 tf32 with fp32 accumulation in
//   3xTF32 form: an fp32 operand is split into hi = tf32(a) and
//   lo = tf32(a − hi) and a·b ≈ lo_a·hi_b + hi_a·lo_b + hi_a·hi_b (small
//   terms first). V is bf16, exact in tf32 (lo = 0), so the products with V
//   take two mma instead of three.
// - Each block computes the full 64×64 scores of its sub-chunk itself (on
//   tensor cores they cost less than the exchange did): the cluster
//   exchanges only the GroupNorm statistics, once per sub-chunk, through a
//   split barrier (arrive, state update, wait), double-buffered by sub-chunk
//   parity so one barrier per sub-chunk suffices.
// - The fp32 state tile lives in registers (the state update's accumulator
//   layout: warp w owns feature rows [16w, 16w + 16) and all 32 columns, 16
//   floats per thread) and is mirrored to shared memory pre-split (hi, lo)
//   for the next sub-chunk's Q·P.
// - The next sub-chunk's Q, K̃ and V are fetched with cp.async into a second
//   buffer while the current one is computed.
// Warp w (of 8), per sub-chunk: one role (rb, half) of the eight: rows
// [16·rb, +16) of the scores (columns [32·half, +32), tiles wholly above the
// diagonal skipped) and of O (columns [16·half, +16) of the block's 32),
// assigned so that warps sharing a sub-partition balance the triangular
// work; and rows [16w, +16) of the state tile.
// Warps whose rows lie past the sub-chunk's end skip the scores and O.
//
// Shared memory at F = 128 (F is padded to a multiple of 16 with zeros):
//   Q, K̃  2 buffers × 2 × [64, F + 4] fp32   135 KiB (row stride ≡ 4 mod 32
//                                            words: fragment loads conflict-free)
//   V     2 buffers × [64, 40] bf16           10 KiB
//   P     hi, lo × [F, 40] fp32                40 KiB
//   Sw    hi, lo × [64, 68] fp32               34 KiB (masked, decayed scores)
//   γ^t, statistics                            2.3 KiB
//   total 218 KiB: one block per SM (no second block to hide latency; the
//   double-buffered loads do that). Registers: at most 255 per thread
//   (__launch_bounds__(256, 1)); ptxas -v (CUDA 13.0, sm_90) reports 189 for
//   the F = 128 specialisation (feature loops with constant trip counts) and
//   197 for the any-F instance, no spills, no stack.
//
// Accuracy (vs the fp32 SIMT kernel): a 3xTF32 product misses lo_a·lo_b and
// the rounding of the lo parts, at most ~2^-21 of |a·b| each; the tensor
// core accumulates each mma's eight products into fp32 (truncating rather
// than rounding: up to an ulp of the running sum per mma). A state update sums
// 64 products in 16 mma per element and is added to the carried state with
// one fp32 fma, so its error stays around 16·2^-23 ≈ 2e-6 of the update's
// magnitude, below the 1e-5 (of the largest state value) the tests allow;
// scores and outputs see 16-48 mma per element, far below bf16 output rounding.
#ifndef SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_TC_H_
#define SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_TC_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "engine/cuda/attention_common.h"
#include "engine/cuda/chunked_attention.h"

namespace supra::cuda::attention_internal {

// Arguments already validated by LaunchChunkedAttention; num_chunks >= 1.
absl::Status LaunchChunkedAttentionTensorCore(const AttentionDims& dims,
                                              const float* q,          // [rows, H·F], fp32
                                              const float* k,          // [rows, Hk·F], fp32
                                              const __nv_bfloat16* v,  // [rows, v_stride], bf16
                                              int64_t v_stride,
                                              const float* gammas,               // [H], fp32
                                              const AttentionChunkDesc* chunks,  // [num_chunks], device
                                              int num_chunks, int rows,
                                              StatePoolLayer<float> state,  // [slots, layers, H, F, Dv], fp32
                                              __nv_bfloat16* out,           // [rows, H·Dv], bf16
                                              cudaStream_t stream);

absl::Status LaunchChunkedAttentionTensorCore(const AttentionDims& dims,
                                              const float* q,          // [rows, H·F], fp32
                                              const float* k,          // [rows, Hk·F], fp32
                                              const __nv_bfloat16* v,  // [rows, v_stride], bf16
                                              int64_t v_stride,
                                              const float* gammas,               // [H], fp32
                                              const AttentionChunkDesc* chunks,  // [num_chunks], device
                                              int num_chunks, int rows,
                                              StatePoolLayer<__nv_bfloat16> state,  // [slots, layers, H, F, Dv], bf16
                                              __nv_bfloat16* out,                   // [rows, H·Dv], bf16
                                              cudaStream_t stream);

}  // namespace supra::cuda::attention_internal

#endif  // SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_TC_H_

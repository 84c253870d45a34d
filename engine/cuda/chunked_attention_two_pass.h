// The two-pass ("states, then outputs") form of the chunked attention, behind
// LaunchChunkedAttention (chunked_attention.h), which validates the arguments,
// packs the chunks into launches that fit the workspace and falls back to the
// SIMT kernel where they do not. Declared here only for that dispatch.
//
// Math per query head, for sub-chunks of L ≤ 64 rows (i, j relative to the
// sub-chunk's first row) entering with state P_s:
//   o_i = γ^i (q_i·P_s) + Σ_{j≤i} γ^{i−j} (q_i·k̃_j) v_j
//   P_{s+1} = γ^L P_s + Σ_j γ^{L−j} k̃_jᵀ v_j
// the same sub-chunk walk as the one-pass kernels (so the same rounding
// structure), split so that only the state recurrence is sequential.
//
// Prep kernel (one block): per chunk of the launch its first sub-chunk
// (exclusive prefix of ceil(length / 64) over the valid chunks, 0 for a
// skipped one) and per sub-chunk its chunk, into the workspace's index.
//
// Pass 1, states (chunked_attention_two_pass.cu): one 256-thread block per
// (32-column tile of Dv, query head, chunk), two blocks per SM. Warp w owns
// state rows [16w, +16) of the tile in registers (the mma accumulator
// layout, 16 floats per thread). Per sub-chunk: write the tile of P_s to the
// workspace, then P ← γ^L P + (diag(γ^{L−j}) K̃)ᵀ·V on mma.sync tf32, K̃
// scaled and split hi/lo, V bf16 (exact in tf32): 2 mma per product, ~fp32
// accuracy (analysis in chunked_attention_mma.cuh). K̃ and V of the next
// sub-chunk are fetched with cp.async while the current one is used. At the
// end the tile goes to the state pool (bf16: rounded to nearest once).
// Shared memory at F = 128: K̃ 2 × [64, 132] fp32 (66 KiB), V 2 × [64, 40]
// bf16 (10 KiB), γ^t: 77 KiB. ptxas -v (CUDA 13.0, sm_90): 110 registers
// (F = 128 specialisation) and 111 (any F), no spills.
//
// Pass 2, outputs (chunked_attention_outputs.cu): one 256-thread block per
// (sub-chunk, query head) owning all Dv columns, so the GroupNorm is
// block-local. Q and K̃ (cp.async group 0), V (group 1) and the first two
// 16-row slices of P_s (groups 2, 3) are staged in shared memory.
//   scores: S = Q·K̃ᵀ (3xTF32), warp roles of chunked_attention_mma.cuh (16
//     rows × 32 columns each, tiles above the diagonal skipped), masked and
//     decayed into Sw, stored split (hi, lo) over K̃ once every warp's
//     scores are in registers;
//   O = diag(γ^i) Q·P_s (3xTF32): P_s streams through three ring slots of
//     16 rows, slices s + 1 and s + 2 in flight while slice s is used; then
//     O += Sw·V (2 terms). Warp w owns the 8-column tiles w, w + 8, ... of
//     O for all 64 rows;
//   GroupNorm: per row, each warp's sum and squared deviations over its
//     columns, combined over the 8 warps in shared memory (over Q, dead by
//     then; Chan et al.).
// Shared memory at F = Dv = 128: Q [64, 132] fp32 (33 KiB), K̃ [64, 132]
// fp32 then Sw hi/lo [64, 68] fp32 (34 KiB), V [64, 136] bf16 (17 KiB), P_s
// 3 × [16, 136] fp32 (25.5 KiB): 109.8 KiB, two blocks per SM (one block's
// loads overlap the other's mma). At F = 128, Dv = 256 (the widest shape):
// 149.8 KiB, one block per SM. ptxas -v (CUDA 13.0, sm_90): 113 (F = 128)
// and 115 (any F) registers for Dv <= 128 (launch bounds: two blocks of 256
// threads per SM, so at most 128), 148 and 151 for Dv <= 256, no spills.
// Every supported shape (F <= 128, Dv <= 256) fits.
//
// Workspace: [sub-chunks, H, F16, Dv8] fp32, F16 = F rounded up to 16, Dv8 =
// Dv rounded up to 8; the padding rows and columns are written as zeros.
#ifndef SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_TWO_PASS_H_
#define SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_TWO_PASS_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/cuda/attention_common.h"
#include "engine/cuda/chunked_attention.h"

namespace supra::cuda::attention_internal {

// Rows of the per-chunk index part of ChunkedAttentionWorkspace::index.
inline constexpr int kTwoPassMaxChunks = 65536;

// Padded sizes of one sub-chunk state in the workspace.
inline int TwoPassF16(const AttentionDims& d) { return (d.features + 15) / 16 * 16; }
inline int TwoPassDv8(const AttentionDims& d) { return (d.value_dim + 7) / 8 * 8; }
inline int64_t TwoPassStateElems(const AttentionDims& d) {
  return int64_t{d.heads} * TwoPassF16(d) * TwoPassDv8(d);  // one sub-chunk, all heads
}

// Sub-chunks of a chunk (0 for one the kernels skip), as the prep kernel
// counts them.
__host__ __device__ inline int SubChunksOf(const AttentionChunkDesc& c, int rows, int slots) {
  if (c.length <= 0 || c.row_begin < 0 || c.row_begin > rows - c.length || c.slot < 0 || c.slot >= slots) return 0;
  return (c.length + kChunkedAttentionSubChunk - 1) / kChunkedAttentionSubChunk;
}

// The sub-chunk index in the workspace (written by the prep kernel).
inline int32_t* TwoPassFirstSubChunk(ChunkedAttentionWorkspace& w) {  // [num_chunks]
  return w.index.data();
}
inline int32_t* TwoPassSubChunkChunk(ChunkedAttentionWorkspace& w) {  // [sub_chunks]
  return w.index.data() + kTwoPassMaxChunks;
}

// Whether the two-pass kernels support the shape (pass 2's shared memory
// fits: true for every F <= 128, Dv <= 256 since pass 2 streams P_s).
bool TwoPassSupports(const AttentionDims& dims);

// One launch of the two-pass kernels over chunks [0, num_chunks) (valid
// arguments, 1 <= num_chunks <= 65535) whose sub-chunks, `sub_chunks` in all
// (>= 1), fit the workspace.
absl::Status LaunchChunkedAttentionTwoPass(const AttentionDims& dims,
                                           const float* q,          // [rows, H·F], fp32
                                           const float* k,          // [rows, Hk·F], fp32
                                           const __nv_bfloat16* v,  // [rows, v_stride], bf16
                                           int64_t v_stride,
                                           const float* gammas,               // [H], fp32
                                           const AttentionChunkDesc* chunks,  // [num_chunks], device
                                           int num_chunks, int rows,
                                           StatePoolLayer<float> state,  // [slots, layers, H, F, Dv], fp32
                                           __nv_bfloat16* out,           // [rows, H·Dv], bf16
                                           cudaStream_t stream, ChunkedAttentionWorkspace& workspace,
                                           int64_t sub_chunks);

absl::Status LaunchChunkedAttentionTwoPass(const AttentionDims& dims,
                                           const float* q,          // [rows, H·F], fp32
                                           const float* k,          // [rows, Hk·F], fp32
                                           const __nv_bfloat16* v,  // [rows, v_stride], bf16
                                           int64_t v_stride,
                                           const float* gammas,               // [H], fp32
                                           const AttentionChunkDesc* chunks,  // [num_chunks], device
                                           int num_chunks, int rows,
                                           StatePoolLayer<__nv_bfloat16> state,  // [slots, layers, H, F, Dv], bf16
                                           __nv_bfloat16* out,                   // [rows, H·Dv], bf16
                                           cudaStream_t stream, ChunkedAttentionWorkspace& workspace,
                                           int64_t sub_chunks);

// The prep kernel and pass 1 alone (what LaunchChunkedAttentionTwoPass runs
// before pass 2), so that the timing test can time the passes apart.
absl::Status LaunchChunkedAttentionStates(const AttentionDims& dims,
                                          const float* k,          // [rows, Hk·F], fp32
                                          const __nv_bfloat16* v,  // [rows, v_stride], bf16
                                          int64_t v_stride,
                                          const float* gammas,               // [H], fp32
                                          const AttentionChunkDesc* chunks,  // [num_chunks], device
                                          int num_chunks, int rows,
                                          StatePoolLayer<float> state,  // [slots, layers, H, F, Dv], fp32
                                          cudaStream_t stream, ChunkedAttentionWorkspace& workspace,
                                          int64_t sub_chunks);
absl::Status LaunchChunkedAttentionStates(const AttentionDims& dims,
                                          const float* k,          // [rows, Hk·F], fp32
                                          const __nv_bfloat16* v,  // [rows, v_stride], bf16
                                          int64_t v_stride,
                                          const float* gammas,               // [H], fp32
                                          const AttentionChunkDesc* chunks,  // [num_chunks], device
                                          int num_chunks, int rows,
                                          StatePoolLayer<__nv_bfloat16> state,  // [slots, layers, H, F, Dv], bf16
                                          cudaStream_t stream, ChunkedAttentionWorkspace& workspace,
                                          int64_t sub_chunks);

// Pass 2 alone (chunked_attention_outputs.cu), after pass 1 on the stream.
absl::Status LaunchChunkedAttentionOutputs(const AttentionDims& dims,
                                           const float* q,          // [rows, H·F], fp32
                                           const float* k,          // [rows, Hk·F], fp32
                                           const __nv_bfloat16* v,  // [rows, v_stride], bf16
                                           int64_t v_stride,
                                           const float* gammas,               // [H], fp32
                                           const AttentionChunkDesc* chunks,  // [num_chunks], device
                                           int num_chunks, int rows, int slots,
                                           const int32_t* first_sub_chunk,  // [num_chunks], device
                                           const int32_t* sub_chunk_chunk,  // [sub_chunks], device
                                           const float* sub_chunk_states,   // [sub_chunks, H, F16, Dv8], fp32
                                           int64_t sub_chunks,
                                           __nv_bfloat16* out,  // [rows, H·Dv], bf16
                                           cudaStream_t stream);

// Pass 2's dynamic shared memory in bytes.
size_t ChunkedAttentionOutputsSmemBytes(const AttentionDims& dims);

// Pass 2's resident blocks per SM on the current device (for the timing test).
absl::StatusOr<int> ChunkedAttentionOutputsBlocksPerSm(const AttentionDims& dims);

}  // namespace supra::cuda::attention_internal

#endif  // SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_TWO_PASS_H_

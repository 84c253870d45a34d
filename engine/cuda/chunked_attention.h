// The chunked (parallel) form of SUPRA's linear attention for prefill (§4)
// with the per-head GroupNorm after it (§3.10), as cpu::ChunkedAttention
// followed by cpu::GroupNorm. For a chunk of C rows entering with state P:
//   o_i = γ^i (q_i·P) + Σ_{j≤i} γ^{i−j} (q_i·k̃_j) v_j;   out_i = GroupNorm(o_i)
//   P ← γ^C P + Σ_j γ^{C−j} k̃_jᵀ v_j
// with γ^t = exp(t·log γ), t ≤ 64 (never a quotient of powers).
//
// Layout: one thread block per (32-column tile of Dv, head, chunk); the tiles
// of one (chunk, head) form a thread-block cluster (at most 8 blocks). A
// block keeps its F×32 tile of the state in shared memory for the whole chunk
// (read from the pool once, written once) and walks the chunk in sub-chunks of
// 64 rows. Per sub-chunk, shared-memory-tiled fp32 products on the SIMT
// cores (fp32 accumulation; no tensor cores, whose tf32/bf16 inputs would
// miss the 1e-5 state tolerance): scores Q·K̃ᵀ split over the cluster by
// features and summed through distributed shared memory, O = diag(γ^i)·Q·P +
// (M ⊙ S)·V, P ← γ^L P + (diag(γ^{L−j}) K̃)ᵀ·V, and GroupNorm statistics
// combined over the cluster (per-tile sums and squared deviations, Chan et
// al.), so one launch does everything. Cluster barriers are split (arrive,
// local work, wait) to hide their latency. 109 KiB of shared memory and at
// most 128 registers per thread at F = 128, so two blocks share an SM (each
// hides the other's load latency) and 128 blocks of 4-block clusters run in
// one wave (an H200 holds at most 30 such clusters at one block per SM).
#ifndef SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_H_
#define SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "engine/cuda/attention_common.h"

namespace supra::cuda {

// A run of consecutive rows that continue one sequence. The kernel walks a
// chunk of any length in sub-chunks of kChunkedAttentionSubChunk rows with
// the state on chip, so the backend need not split a prompt: one chunk per
// sequence per launch is the fast way. Splitting a sequence into consecutive
// chunks over several launches (chunk rounds) continues the state and gives
// the same result to rounding.
struct AttentionChunkDesc {
  int32_t row_begin = 0;  // first row in q/k/v/out
  int32_t length = 0;     // rows, >= 1
  int32_t slot = 0;       // state-pool slot of the sequence
};

inline constexpr int kChunkedAttentionSubChunk = 64;
// Largest F: the sub-chunk's Q and K̃ and the state tile
// live in shared memory.
inline constexpr int kMaxChunkedAttentionFeatures = 128;

// The chunks of one launch must have disjoint rows and distinct slots (they
// run in parallel). A chunk whose rows fall outside [0, rows), whose length
// is not positive or whose slot is outside [0, state.slots) is skipped (state
// and output untouched); the backend builds valid descriptors. Rows covered
// by no chunk are not written. INVALID_ARGUMENT before any launch for a bad
// head layout, F > 128, num_chunks outside [0, 65535], rows < 0, a v stride
// below Hkv·Dv, a bad pool view or a null pointer with num_chunks > 0.
absl::Status LaunchChunkedAttention(const AttentionDims& dims,
                                    const float* q,          // [rows, H·F], fp32
                                    const float* k,          // [rows, Hk·F], fp32, rope'd and scaled by 1/sqrt(F)
                                    const __nv_bfloat16* v,  // [rows, v_stride], bf16: columns [0, Hkv·Dv) used
                                    int64_t v_stride,        // elements between rows of v (the qkv width)
                                    const float* gammas,     // [H], fp32
                                    const AttentionChunkDesc* chunks,  // [num_chunks], device
                                    int num_chunks, int rows,
                                    StatePoolLayer<float> state,  // [slots, layers, H, F, Dv], fp32
                                    __nv_bfloat16* out,           // [rows, H·Dv], bf16, GroupNorm'ed
                                    cudaStream_t stream);

// The same with a bf16 state pool (rounded to nearest once per launch).
absl::Status LaunchChunkedAttention(const AttentionDims& dims,
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

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_H_

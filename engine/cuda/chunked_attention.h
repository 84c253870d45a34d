// The chunked (parallel) form of SUPRA's linear attention for prefill (§4)
// with the per-head GroupNorm after it (§3.10), as cpu::ChunkedAttention
// followed by cpu::GroupNorm. For a chunk of C rows entering with state P:
//   o_i = γ^i (q_i·P) + Σ_{j≤i} γ^{i−j} (q_i·k̃_j) v_j;   out_i = GroupNorm(o_i)
//   P ← γ^C P + Σ_j γ^{C−j} k̃_jᵀ v_j
// with γ^t = exp(t·log γ), t ≤ 64 (never a quotient of powers).
//
// Two kernel families compute it; LaunchChunkedAttention picks one (see
// ChunkedAttentionKernel).
//
// Two-pass kernels (chunked_attention_two_pass.{h,cu}, chunked_attention_
// outputs.cu; the default when the caller gives a workspace), "states, then
// outputs": pass 1 walks each chunk's sub-chunks in order and only carries the
// state (P ← γ^L P + (diag(γ^{L−j}) K̃)ᵀ V, one block per (32-column tile,
// head, chunk)), writing the state entering every sub-chunk to the workspace;
// pass 2 is fully parallel, one block per (sub-chunk, head) owning all Dv
// columns: O = diag(γ^i) Q·P_s + (M ⊙ decay ⊙ Q K̃ᵀ)·V and the GroupNorm,
// block-local. Both on tensor cores in 3xTF32 form (2 terms where V is one
// operand; accuracy in chunked_attention_mma.cuh). Layout and budgets in
// chunked_attention_two_pass.h.
//
// SIMT kernel (chunked_attention.cu, the reference and fallback): one thread
// block per (32-column tile of Dv, head, chunk), the tiles of one (chunk,
// head) forming a thread-block cluster (at most 8 blocks); a block keeps its
// F×32 tile of the state on chip for the whole chunk (read from the pool
// once, written once), walks the chunk in sub-chunks of 64 rows and combines
// the GroupNorm statistics over the cluster through distributed shared memory
// (per-tile sums and squared deviations, Chan et al.), so one launch does
// everything; shared-memory-tiled fp32 products on the SIMT cores: scores Q·K̃ᵀ split
// over the cluster by features and summed through distributed shared memory,
// O = diag(γ^i)·Q·P + (M ⊙ S)·V, P ← γ^L P + (diag(γ^{L−j}) K̃)ᵀ·V. Cluster
// barriers are split (arrive, local work, wait) to hide their latency. 109 KiB
// of shared memory and at most 128 registers per thread at F = 128, so two
// blocks share an SM.
#ifndef SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_H_
#define SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/cuda/attention_common.h"
#include "engine/cuda/device_buffer.h"

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

// Which kernel runs a launch. kAuto: the two-pass kernels when the caller
// passes a workspace and the host copy of the descriptors, the whole launch
// fits the workspace and its chunks average more than one sub-chunk (64
// rows); otherwise the SIMT kernel. On the H200 (Mistral shapes, ms a
// layer): 1 × 2048 two-pass 0.28 against SIMT 0.65, 8 × 2048 in one launch
// 1.87 against 3.16. kTwoPass: the two-pass kernels wherever possible: chunks
// are packed into as many internal launches as the workspace needs; a chunk
// too long for the workspace alone (and every chunk when there is no
// workspace or no host copy) runs on the SIMT kernel. kSimt: the SIMT kernel
// (for tests and timing). Every kernel supports every shape the launcher
// accepts.
enum class ChunkedAttentionKernel { kAuto, kSimt, kTwoPass };

// Device scratch of the two-pass kernels: the fp32 state entering every
// sub-chunk of a launch, per query head, and the sub-chunk index of the
// launch. Created once (the backend: at load, for its largest prefill pass)
// and reused by every launch on one stream (launches on one stream run in
// order, so they may share it; two streams need two workspaces).
// Move-only.
struct ChunkedAttentionWorkspace {
  // Room for max_rows rows in whole sub-chunks plus `partial_sub_chunks`
  // sub-chunks more (each chunk whose length is not a multiple of 64 ends in
  // a partial one): (ceil(max_rows / 64) + partial_sub_chunks) · H · F16 ·
  // Dv8 · 4 bytes, F16 = F rounded up to 16, Dv8 = Dv rounded up to 8; 64 KiB
  // per sub-chunk and head at Mistral-SUPRA's shapes (8192 rows: 256 MiB).
  // INVALID_ARGUMENT for a bad head layout or a negative count;
  // RESOURCE_EXHAUSTED (naming the bytes) when the GPU lacks the memory.
  static absl::StatusOr<ChunkedAttentionWorkspace> Create(const AttentionDims& dims, int max_rows,
                                                          int partial_sub_chunks = 16);

  // Sub-chunk states (of one head each) a launch at `d` can hold.
  int64_t StateCapacity(const AttentionDims& d) const;
  size_t bytes() const { return states.bytes() + index.bytes(); }

  DeviceBuffer<float> states;  // [sub-chunks, H, F16, Dv8], fp32
  // [65536 + sub-chunks]: per chunk of a launch its first sub-chunk, then per
  // sub-chunk of the launch its chunk (written by a prep kernel per launch).
  DeviceBuffer<int32_t> index;
  int64_t sub_chunks = 0;  // at the dims it was created for
};

// The chunks of one launch must have disjoint rows and distinct slots (they
// run in parallel). A chunk whose rows fall outside [0, rows), whose length
// is not positive or whose slot is outside [0, state.slots) is skipped (state
// and output untouched); the backend builds valid descriptors. Rows covered
// by no chunk are not written. INVALID_ARGUMENT before any launch for a bad
// head layout, F > 128, num_chunks outside [0, 65535], rows < 0, a v stride
// below Hkv·Dv, a bad pool view or a null pointer with num_chunks > 0.
// `workspace` (may be null) and `host_chunks` (the same descriptors in host
// memory, [num_chunks], may be null; read before the call returns) enable the
// two-pass kernels (see ChunkedAttentionKernel).
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
                                    cudaStream_t stream, ChunkedAttentionKernel kernel = ChunkedAttentionKernel::kAuto,
                                    ChunkedAttentionWorkspace* workspace = nullptr,
                                    const AttentionChunkDesc* host_chunks = nullptr);  // [num_chunks], host

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
                                    cudaStream_t stream, ChunkedAttentionKernel kernel = ChunkedAttentionKernel::kAuto,
                                    ChunkedAttentionWorkspace* workspace = nullptr,
                                    const AttentionChunkDesc* host_chunks = nullptr);  // [num_chunks], host

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_CHUNKED_ATTENTION_H_

// The recurrent form of SUPRA's linear attention for one decode step of one
// layer (§3.9) with the per-head GroupNorm after it (§3.10), as
// cpu::RecurrentAttention followed by cpu::GroupNorm (eps 1e-5, biased
// variance, no affine): for each sequence i and query head h,
//   o = q·P + (q·k̃) v;   P ← γ_h (P + k̃⊗v);   out = GroupNorm(o)
// with P the layer's state of sequence i, read and written exactly once.
// Accumulation is fp32 (the CPU oracle sums in float64).
//
// Two kernels (DecodeAttentionKernel below), bit-identical results:
// - cluster: one thread block per (32-column tile of Dv (64 with a bf16
//   pool), head, sequence), all F rows of its tile; the blocks of one
//   (sequence, head) form a thread-block cluster and exchange their o tiles
//   through distributed shared memory for the GroupNorm statistics. At
//   Mistral-SUPRA's size that is 128 blocks at batch 1, each streaming 16 KiB
//   of state in 16-byte accesses. Best while the whole grid fits in one wave.
// - stream: a persistent grid (one block per SM) walking whole (sequence,
//   head) states, each staged into shared memory by one bulk asynchronous copy
//   with several heads in flight per SM; the block is the cluster's blocks
//   fused, so GroupNorm is a block reduction. For large batches, where the
//   kernel is a pure stream of state bytes.
#ifndef SUPRA_ENGINE_CUDA_RECURRENT_ATTENTION_H_
#define SUPRA_ENGINE_CUDA_RECURRENT_ATTENTION_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "engine/cuda/attention_common.h"

namespace supra::cuda {

// Which decode kernel runs (both give bit-identical results):
// - kCluster: one block per (32 fp32 or 64 bf16 Dv columns, head,
//   sequence), the blocks of a head in a thread-block cluster; any shape.
// - kStream: a persistent grid of one block per SM, each walking whole heads
//   staged through shared memory by bulk asynchronous copies, several heads in
//   flight per SM; vector-aligned pools with F <= 128 and Dv <= 128 (fp32) or
//   256 (bf16); other shapes run the cluster kernel.
// - kAuto: the streaming kernel from n·H >= 2 · SMs on (batch 9 at H = 32 on
//   an H200), else the cluster kernel; the environment variable
//   SUPRA_DECODE_ATTENTION (read once) overrides: "cluster", "stream", or a
//   number N for the streaming kernel from batch N on.
enum class DecodeAttentionKernel { kAuto, kCluster, kStream };

// Sequences with a slot outside [0, state.slots) are skipped (state and
// output untouched); the backend validates slots before it gets here. Slots
// within a launch must be distinct. INVALID_ARGUMENT before any launch for a
// bad head layout (see ValidateAttentionArgs: Dv <= 256, H <= 65535), n
// outside [0, 65535], a v stride below Hkv·Dv, a bad pool view or a null
// pointer with n > 0.
//
// Launched with programmatic dependent launch (programmatic_launch.cuh): while
// the previous kernel finishes it already loads state (and reads the slots
// and gammas), which the rules allow because they were written two or more
// operations back; q, k and v are read after the wait. So the operation just
// before this launch must not write the state pool, the slots or the gammas
// (the decode step's is the feature map). A slot changed by then is detected
// and its state reloaded, but a state changed by then is not.
absl::Status LaunchRecurrentAttention(const AttentionDims& dims,
                                      const float* q,               // [n, H·F], fp32
                                      const float* k,               // [n, Hk·F], fp32, rope'd and scaled by 1/sqrt(F)
                                      const __nv_bfloat16* v,       // [n, v_stride], bf16: columns [0, Hkv·Dv) used
                                      int64_t v_stride,             // elements between rows of v (the qkv width)
                                      const float* gammas,          // [H], fp32
                                      const int32_t* slots,         // [n], int32, device
                                      int n,                        // sequences
                                      StatePoolLayer<float> state,  // [slots, layers, H, F, Dv], fp32
                                      __nv_bfloat16* out,           // [n, H·Dv], bf16, GroupNorm'ed
                                      cudaStream_t stream,
                                      DecodeAttentionKernel kernel = DecodeAttentionKernel::kAuto);

// The same with a bf16 state pool (rounded to nearest once per step).
absl::Status LaunchRecurrentAttention(const AttentionDims& dims,
                                      const float* q,          // [n, H·F], fp32
                                      const float* k,          // [n, Hk·F], fp32
                                      const __nv_bfloat16* v,  // [n, v_stride], bf16
                                      int64_t v_stride,
                                      const float* gammas,   // [H], fp32
                                      const int32_t* slots,  // [n], int32, device
                                      int n,
                                      StatePoolLayer<__nv_bfloat16> state,  // [slots, layers, H, F, Dv], bf16
                                      __nv_bfloat16* out,                   // [n, H·Dv], bf16
                                      cudaStream_t stream,
                                      DecodeAttentionKernel kernel = DecodeAttentionKernel::kAuto);

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_RECURRENT_ATTENTION_H_

#include <cooperative_groups.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "engine/cuda/attention_common.cuh"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_limits.h"
#include "engine/cuda/programmatic_launch.cuh"
#include "engine/cuda/recurrent_attention.h"
#include "engine/util/status_macros.h"

namespace supra::cuda {
namespace {

namespace cg = cooperative_groups;
using attention_internal::ClusterArrive;
using attention_internal::ClusterWait;
using attention_internal::FromFloat;
using attention_internal::StateOffset;
using attention_internal::ToFloat;
using attention_internal::WarpSum;

// 128 threads of 8 state rows each (16 row groups × 8 threads across 32
// fp32 or 64 bf16 columns): every thread has 8 independent 16-byte loads in
// flight before it uses any, and small blocks keep many resident per SM. On
// an H200 this streamed 5-19 % faster than 256 threads of 4 rows at batch
// 8-256 with an fp32 pool. Overridable for experiments.
#ifndef SUPRA_DECODE_THREADS
#define SUPRA_DECODE_THREADS 128
#endif
#ifndef SUPRA_DECODE_ROWS_PER_PASS
#define SUPRA_DECODE_ROWS_PER_PASS 8
#endif
constexpr int kThreads = SUPRA_DECODE_THREADS;
constexpr int kRowsPerPass = SUPRA_DECODE_ROWS_PER_PASS;
// A lane holds at most this many of a head's Dv outputs for the statistics.
constexpr int kStatsPerLane = kMaxAttentionValueDim / 32;

// GroupNorm statistics of one head's dv outputs, by one warp: two-pass mean
// and biased variance, in the same order in both kernels (so they stay
// bit-identical). value(c) returns output c < dv; lane 0 writes stats[0] =
// mean and stats[1] = 1 / sqrt(variance + eps).
template <typename Value>
__device__ __forceinline__ void HeadNormStats(int lane, int dv, const Value& value, float* stats) {
  float values[kStatsPerLane];
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < kStatsPerLane; ++i) {
    const int c = lane + 32 * i;
    values[i] = 0.0f;
    if (c < dv) {
      values[i] = value(c);
      sum += values[i];
    }
  }
  const float mean = WarpSum(sum) / static_cast<float>(dv);
  float squares = 0.0f;
#pragma unroll
  for (int i = 0; i < kStatsPerLane; ++i) {
    const float d = values[i] - mean;
    if (lane + 32 * i < dv) squares = fmaf(d, d, squares);
  }
  const float variance = WarpSum(squares) / static_cast<float>(dv);
  if (lane == 0) {
    stats[0] = mean;
    stats[1] = 1.0f / sqrtf(variance + kGroupNormEps);
  }
}

// A block covers kCols = kTx · kVec columns of Dv and all F rows; kTx threads
// share a state row (kVec consecutive columns each, 16 bytes with the vector
// paths: 4 fp32 or 8 bf16), kTy row groups stride over F.
template <int kVec>
struct Tiling {
  static constexpr int kTx = kVec == 1 ? 32 : 8;
  static constexpr int kTy = kThreads / kTx;
  static constexpr int kCols = kTx * kVec;
};

// kVec state elements as loaded (16 bytes on the vector paths), unpacked to
// fp32 only when used: a bf16 row costs 4 registers in flight, not 8.
template <typename T, int kVec>
struct Packed {
  using Type = std::conditional_t<kVec == 1, T, std::conditional_t<std::is_same_v<T, float>, float4, uint4>>;
  static_assert(kVec == 1 || (std::is_same_v<T, float> && kVec == 4) || (std::is_same_v<T, __nv_bfloat16> && kVec == 8),
                "unsupported state vector");
};
template <typename T, int kVec>
using PackedT = typename Packed<T, kVec>::Type;

template <typename T, int kVec>
__device__ __forceinline__ PackedT<T, kVec> LoadStreaming(const T* p) {
  return __ldcs(reinterpret_cast<const PackedT<T, kVec>*>(p));
}

template <typename T, int kVec>
__device__ __forceinline__ PackedT<T, kVec> ZeroPacked() {
  if constexpr (kVec == 1) {
    return FromFloat<T>(0.0f);
  } else {
    PackedT<T, kVec> zero;
    std::memset(&zero, 0, sizeof(zero));
    return zero;
  }
}

template <typename T, int kVec>
__device__ __forceinline__ void Unpack(const PackedT<T, kVec>& raw, float (&out)[kVec]) {
  if constexpr (kVec == 1) {
    out[0] = ToFloat(raw);
  } else if constexpr (std::is_same_v<T, float>) {
    out[0] = raw.x, out[1] = raw.y, out[2] = raw.z, out[3] = raw.w;
  } else {
    const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(pairs[i]);
      out[2 * i] = f.x, out[2 * i + 1] = f.y;
    }
  }
}

template <typename T, int kVec>
__device__ __forceinline__ void StoreStreaming(T* p, const float (&in)[kVec]) {
  if constexpr (std::is_same_v<T, float> && kVec == 4) {
    __stcs(reinterpret_cast<float4*>(p), make_float4(in[0], in[1], in[2], in[3]));
  } else if constexpr (std::is_same_v<T, __nv_bfloat16> && kVec == 8) {
    uint4 raw;
    __nv_bfloat162* pairs = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) pairs[i] = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
    __stcs(reinterpret_cast<uint4*>(p), raw);
  } else {
    static_assert(kVec == 1, "unsupported state vector");
    __stcs(p, FromFloat<T>(in[0]));
  }
}

// The state update of kRows rows f = first + r·kTy (r < kRows, f < F) of
// one thread's kVec columns, from the rows already in registers (raw): o +=
// q_f·P_f (acc), qk += q_f·k_f, and γ(P_f + k_f v) stored back. Both decode
// kernels run exactly this, in this order, which keeps them bit-identical.
template <typename StateT, int kVec, int kRows, int kTy>
__device__ __forceinline__ void UpdateRows(const PackedT<StateT, kVec> (&raw)[kRows], const float (&qf)[kRows],
                                           const float (&kf)[kRows], const float (&v_reg)[kVec], float gamma, int first,
                                           int f_dim, bool has_cols, StateT* state, int dv, int col, float (&acc)[kVec],
                                           float& qk) {
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int f = first + r * kTy;
    if (f < f_dim) {
      qk = fmaf(qf[r], kf[r], qk);
      if (has_cols) {
        float p[kVec];
        Unpack<StateT, kVec>(raw[r], p);
#pragma unroll
        for (int c = 0; c < kVec; ++c) {
          acc[c] = fmaf(qf[r], p[c], acc[c]);
          p[c] = gamma * fmaf(kf[r], v_reg[c], p[c]);
        }
        StoreStreaming<StateT, kVec>(state + static_cast<int64_t>(f) * dv + col, p);
      }
    }
  }
}

// ---- the cluster kernel (any shape; the default for small batches) --------

// Grid (tiles, H, n), cluster (tiles, 1, 1): the blocks of one cluster are the
// Dv tiles of one (sequence, head). Each thread streams its rows of P once
// (load, o += q_f·P_f, store γ(P_f + k_f v)); the block reduces o over its row
// groups; the cluster then shares the o tiles for the GroupNorm statistics.
//
// Programmatic launch (programmatic_launch.cuh): the state pool and the slots
// were written two or more operations back (the previous decode step or a
// prefill, and a copy), so while the previous kernel (the feature map)
// finishes, each thread already loads its first kRowsPerPass state rows into
// registers; q, k, v are read after the wait. The slot is read again after
// the wait and the rows reloaded if it changed (it cannot under the rules; the
// check costs one compare).
template <typename StateT, int kVec>
__global__ void __launch_bounds__(kThreads)
    RecurrentAttentionKernel(AttentionDims dims,
                             const float* q,          // [n, H·F]; written by the kernels before:
                             const float* k,          // [n, Hk·F]; plain loads (not ld.global.nc),
                             const __nv_bfloat16* v,  // [n, v_stride]; ordered after the wait
                             int64_t v_stride,
                             const float* __restrict__ gammas,   // [H]
                             const int32_t* __restrict__ slots,  // [n]
                             StatePoolLayer<StateT> pool,        // [slots, layers, H, F, Dv]
                             __nv_bfloat16* __restrict__ out) {  // [n, H·Dv]
  using Tile = Tiling<kVec>;
  __shared__ __align__(16) float partial_o[Tile::kTy][Tile::kCols];  // per row group
  __shared__ float partial_qk[Tile::kTy];
  __shared__ float o_tile[Tile::kCols];  // read by the whole cluster
  __shared__ float stats[2];             // mean, 1 / std

  const int tile = blockIdx.x, head = blockIdx.y, seq = blockIdx.z;
  const int heads = dims.heads, f_dim = dims.features, dv = dims.value_dim;
  const int tx = threadIdx.x % Tile::kTx, ty = threadIdx.x / Tile::kTx;
  const int col = tile * Tile::kCols + tx * kVec;  // this thread's first column
  // Dv is a multiple of kVec on the vector paths: a thread's columns are all
  // in range or all out.
  const bool has_cols = col < dv;

  // The first pass of state rows, before the wait (see above).
  PackedT<StateT, kVec> raw[kRowsPerPass];
  const int early_slot = slots[seq];
  const auto load_first_pass = [&](int s) {
    const StateT* state = pool.data + StateOffset(pool, s, heads, head, f_dim, dv);
#pragma unroll
    for (int r = 0; r < kRowsPerPass; ++r) {
      const int f = ty + r * Tile::kTy;
      raw[r] = ZeroPacked<StateT, kVec>();
      if (f < f_dim && has_cols) raw[r] = LoadStreaming<StateT, kVec>(state + static_cast<int64_t>(f) * dv + col);
    }
  };
  if (early_slot >= 0 && early_slot < pool.slots) load_first_pass(early_slot);
  const float gamma = gammas[head];  // a weight: written long before
  WaitForPreviousKernel();
  AllowNextKernel();

  const int slot = slots[seq];
  // Every block of the cluster has the same sequence, so all leave together
  // and none waits at a cluster barrier for a block that left.
  if (slot < 0 || slot >= pool.slots) return;
  if (slot != early_slot) load_first_pass(slot);

  const float* qh = q + static_cast<int64_t>(seq) * heads * f_dim + static_cast<int64_t>(head) * f_dim;
  const float* kh = k + static_cast<int64_t>(seq) * dims.key_heads * f_dim +
                    static_cast<int64_t>(head / (heads / dims.key_heads)) * f_dim;
  const __nv_bfloat16* vh = v + seq * v_stride + static_cast<int64_t>(head / (heads / dims.value_heads)) * dv;
  StateT* state = pool.data + StateOffset(pool, slot, heads, head, f_dim, dv);  // [F, Dv]

  float v_reg[kVec];
#pragma unroll
  for (int c = 0; c < kVec; ++c) v_reg[c] = has_cols ? __bfloat162float(vh[col + c]) : 0.0f;

  float acc[kVec];
#pragma unroll
  for (int c = 0; c < kVec; ++c) acc[c] = 0.0f;
  float qk = 0.0f;
  for (int f0 = ty; f0 < f_dim; f0 += kRowsPerPass * Tile::kTy) {
    float qf[kRowsPerPass], kf[kRowsPerPass];
    const bool first = f0 == ty;
#pragma unroll
    for (int r = 0; r < kRowsPerPass; ++r) {
      const int f = f0 + r * Tile::kTy;
      qf[r] = 0.0f, kf[r] = 0.0f;
      if (!first) raw[r] = ZeroPacked<StateT, kVec>();
      if (f < f_dim) {
        qf[r] = qh[f], kf[r] = kh[f];
        if (has_cols && !first) raw[r] = LoadStreaming<StateT, kVec>(state + static_cast<int64_t>(f) * dv + col);
      }
    }
    UpdateRows<StateT, kVec, kRowsPerPass, Tile::kTy>(raw, qf, kf, v_reg, gamma, f0, f_dim, has_cols, state, dv, col,
                                                      acc, qk);
  }

#pragma unroll
  for (int c = 0; c < kVec; ++c) partial_o[ty][tx * kVec + c] = acc[c];
  if (tx == 0) partial_qk[ty] = qk;
  __syncthreads();
  if (threadIdx.x < Tile::kCols) {
    const int c = tile * Tile::kCols + threadIdx.x;
    float o = 0.0f, qk_sum = 0.0f;
#pragma unroll 8
    for (int y = 0; y < Tile::kTy; ++y) o += partial_o[y][threadIdx.x];
#pragma unroll 8
    for (int y = 0; y < Tile::kTy; ++y) qk_sum += partial_qk[y];
    o_tile[threadIdx.x] = c < dv ? fmaf(qk_sum, __bfloat162float(vh[c]), o) : 0.0f;
  }

  // GroupNorm over the head's Dv outputs, spread over the cluster's blocks:
  // every block gathers all of them (two-pass mean and biased variance).
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  if (threadIdx.x < 32) {
    HeadNormStats(
        threadIdx.x, dv, [&](int c) { return cluster.map_shared_rank(o_tile, c / Tile::kCols)[c % Tile::kCols]; },
        stats);
  }
  // This block is done reading the cluster's o tiles: arrive now, and wait
  // only before exit (its own o_tile must outlive the other blocks' reads).
  ClusterArrive();
  __syncthreads();
  if (threadIdx.x < Tile::kCols) {
    const int c = tile * Tile::kCols + threadIdx.x;
    if (c < dv) {
      out[static_cast<int64_t>(seq) * heads * dv + static_cast<int64_t>(head) * dv + c] =
          __float2bfloat16_rn((o_tile[threadIdx.x] - stats[0]) * stats[1]);
    }
  }
  ClusterWait();
}

// ---- the streaming kernel (large batches) ---------------------------------
//
// A persistent grid of one block per SM walks the n·H (sequence, head) items
// (item = seq·H + head, block b takes items b, b + grid, ...). A block is the
// cluster kernel's `tiles` blocks fused (tiles × kThreads threads, thread
// (tile, tx, ty) doing exactly what thread (tx, ty) of block `tile` does
// there, in the same order, so both kernels give bit-identical results), and
// its state comes from shared memory: one thread streams whole heads
// (F·Dv contiguous elements) into a ring of `stages` buffers with bulk
// asynchronous copies (cp.async.bulk, completion on an mbarrier per buffer),
// so stages − 1 heads (128 KiB at Mistral-SUPRA's fp32 size) are always in
// flight per SM while the block computes one; updated rows go straight to
// global memory with streaming stores. GroupNorm statistics are a block
// reduction: no cluster, no cluster barriers, no block launches after the
// first wave, no tail of partly filled waves. The reduction of one item
// overlaps the next item's update (two block barriers per item, not three:
// see the loop), which took batch 64 from 90 to 78 µs a layer on the H200.
//
// Programmatic launch: the first `stages` copies (and the slots they need)
// are issued before the wait, as in the cluster kernel; a buffer whose slot
// changed by the time it is used is refilled with plain loads.

// Shared-memory helpers for the bulk copies (sm_90).
__device__ __forceinline__ unsigned SharedAddress(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void MbarrierInit(uint64_t* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(SharedAddress(bar)), "r"(count) : "memory");
}
// Makes the initialised barriers visible to the async proxy (the copies).
__device__ __forceinline__ void FenceMbarrierInit() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// Orders this thread's generic-proxy shared-memory accesses before later
// async-proxy ones (a copy refilling a buffer the block has read).
__device__ __forceinline__ void FenceProxyAsyncShared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
__device__ __forceinline__ void MbarrierArriveExpectTx(uint64_t* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(SharedAddress(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void MbarrierArrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(SharedAddress(bar)) : "memory");
}
// Blocks until the barrier's phase with this parity has completed (acquire:
// the copied bytes and the producer's writes before its arrive are visible).
__device__ __forceinline__ void MbarrierWait(uint64_t* bar, unsigned parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n"
      "}\n" ::"r"(SharedAddress(bar)),
      "r"(parity)
      : "memory");
}
// `bytes` (a multiple of 16, both addresses 16-byte aligned) from global to
// shared memory; completes `bytes` of the barrier's transaction count.
__device__ __forceinline__ void BulkCopyToShared(void* dst, const void* src, unsigned bytes, uint64_t* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   SharedAddress(dst)),
               "l"(src), "r"(bytes), "r"(SharedAddress(bar))
               : "memory");
}

// Heads staged in shared memory per block, at most.
constexpr int kMaxStages = 4;
// A thread keeps q and k of at most this many rows in registers: F <= 128
// on the streaming path (F <= kMaxStreamRows · kTy).
constexpr int kMaxStreamRows = 8;

// Dynamic shared memory of the streaming kernel, in bytes from its start:
// the state buffers, then the reduction arrays, then the barriers.
struct StreamLayout {
  int64_t item_bytes;  // F · Dv · sizeof(StateT)
  int stages, tiles, cols, row_groups;
  __host__ __device__ int64_t partial_o() const { return stages * item_bytes; }  // [tiles, kTy, kCols] f32
  __host__ __device__ int64_t partial_qk() const { return partial_o() + int64_t{4} * tiles * row_groups * cols; }
  __host__ __device__ int64_t o_all() const { return partial_qk() + int64_t{4} * tiles * row_groups; }
  __host__ __device__ int64_t stats() const { return o_all() + int64_t{8} * tiles * cols; }  // 2 floats
  __host__ __device__ int64_t loaded_slot() const { return stats() + 8; }                    // [stages] i32
  __host__ __device__ int64_t barriers() const {                                             // [stages] u64
    return (loaded_slot() + 4 * stages + 7) / 8 * 8;
  }
  __host__ __device__ int64_t total() const { return barriers() + 8 * stages; }
};

template <typename StateT, int kVec>
__global__ void __launch_bounds__(4 * kThreads, 1)
    RecurrentAttentionStreamKernel(AttentionDims dims,
                                   const float* q,          // [n, H·F]; read after the wait
                                   const float* k,          // [n, Hk·F]
                                   const __nv_bfloat16* v,  // [n, v_stride]
                                   int64_t v_stride,
                                   const float* __restrict__ gammas,   // [H]
                                   const int32_t* __restrict__ slots,  // [n]
                                   int n,
                                   StatePoolLayer<StateT> pool,  // [slots, layers, H, F, Dv]
                                   StreamLayout layout,
                                   __nv_bfloat16* __restrict__ out) {  // [n, H·Dv]
  using Tile = Tiling<kVec>;
  extern __shared__ __align__(128) unsigned char smem[];
  const int heads = dims.heads, f_dim = dims.features, dv = dims.value_dim;
  const int stages = layout.stages;
  auto* partial_o = reinterpret_cast<float*>(smem + layout.partial_o());    // [tiles][kTy][kCols]
  auto* partial_qk = reinterpret_cast<float*>(smem + layout.partial_qk());  // [tiles][kTy]
  auto* o_all = reinterpret_cast<float*>(smem + layout.o_all());            // [2][tiles · kCols], by item parity
  const int o_stride = layout.tiles * Tile::kCols;
  auto* stats = reinterpret_cast<float*>(smem + layout.stats());            // mean, 1 / std
  auto* loaded_slot = reinterpret_cast<int*>(smem + layout.loaded_slot());  // [stages]: slot each buffer holds
  auto* barriers = reinterpret_cast<uint64_t*>(smem + layout.barriers());   // [stages]
  const auto buffer = [&](int stage) { return reinterpret_cast<StateT*>(smem + stage * layout.item_bytes); };

  const int tile = threadIdx.x / kThreads, local = threadIdx.x % kThreads;
  const int tx = local % Tile::kTx, ty = local / Tile::kTx;
  const int col = tile * Tile::kCols + tx * kVec;
  const bool has_cols = col < dv;
  const int items = n * heads;

  // Thread 0 fills buffer `stage` with the state of `item` (i-th of this
  // block): the barrier's phase completes when the bytes have landed, or at
  // once for a slot outside the pool (nothing to copy).
  const auto issue = [&](int i) {
    const int item = blockIdx.x + i * gridDim.x;
    if (item >= items) return;
    const int stage = i % stages;
    const int s = slots[item / heads];
    loaded_slot[stage] = s;
    if (s >= 0 && s < pool.slots) {
      const StateT* src = pool.data + StateOffset(pool, s, heads, item % heads, f_dim, dv);
      MbarrierArriveExpectTx(&barriers[stage], static_cast<unsigned>(layout.item_bytes));
      BulkCopyToShared(buffer(stage), src, static_cast<unsigned>(layout.item_bytes), &barriers[stage]);
    } else {
      MbarrierArrive(&barriers[stage]);
    }
  };

  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) MbarrierInit(&barriers[s], 1);
    FenceMbarrierInit();
    // Before the wait: the state pool and the slots are two or more
    // operations back (see the cluster kernel).
    for (int i = 0; i < stages; ++i) issue(i);
  }
  WaitForPreviousKernel();
  AllowNextKernel();
  __syncthreads();  // the barriers are initialised

  // An item's inputs (q̃, k̃ and v of its head: a few scattered loads from
  // L2) are read one item ahead, so that their latency overlaps the item
  // before instead of stalling every item (the kernel was bound by that
  // per-item latency, not by the state's bandwidth).
  struct Inputs {
    float qf[kMaxStreamRows], kf[kMaxStreamRows], v_reg[kVec];
    float v_out;  // v at this thread's output column (threads local < kCols)
  };
  const auto load_inputs = [&](int i, Inputs& in) {
    const int item = blockIdx.x + i * gridDim.x;
    const bool present = item < items;
    const int seq = present ? item / heads : 0, head = present ? item % heads : 0;
    const int slot = present ? slots[seq] : -1;
    const bool valid = slot >= 0 && slot < pool.slots;
    const float* qh = q + static_cast<int64_t>(seq) * heads * f_dim + static_cast<int64_t>(head) * f_dim;
    const float* kh = k + static_cast<int64_t>(seq) * dims.key_heads * f_dim +
                      static_cast<int64_t>(head / (heads / dims.key_heads)) * f_dim;
    const __nv_bfloat16* vh = v + seq * v_stride + static_cast<int64_t>(head / (heads / dims.value_heads)) * dv;
#pragma unroll
    for (int r = 0; r < kMaxStreamRows; ++r) {
      const int f = ty + r * Tile::kTy;
      in.qf[r] = 0.0f, in.kf[r] = 0.0f;
      if (valid && f < f_dim) in.qf[r] = qh[f], in.kf[r] = kh[f];
    }
#pragma unroll
    for (int c = 0; c < kVec; ++c) in.v_reg[c] = valid && has_cols ? __bfloat162float(vh[col + c]) : 0.0f;
    const int out_col = tile * Tile::kCols + local;
    in.v_out = valid && local < Tile::kCols && out_col < dv ? __bfloat162float(vh[out_col]) : 0.0f;
  };
  Inputs next;
  load_inputs(0, next);
  float v_out = 0.0f;  // the current item's v at this thread's output column

  // Two barriers per item. Item i's partial sums are reduced to o after the
  // first (S1), its GroupNorm statistics are computed by warp 0 after the
  // second (S2) while the other warps already update item i + 1, and its
  // output is written after item i + 1's S1, together with item i + 1's
  // reduction. o is double-buffered by item parity; the partial sums and
  // the statistics need one buffer (each is rewritten only after a barrier
  // that follows its last read).
  bool pending = false;     // the previous item's output is still to be written
  int64_t pending_out = 0;  // its first element in out
  for (int i = 0;; ++i) {
    const int item = blockIdx.x + i * gridDim.x;
    const bool present = item < items;  // uniform over the block
    if (!present && !pending) break;
    bool valid = false;
    int64_t out_offset = 0;
    if (present) {
      const int seq = item / heads, head = item % heads, stage = i % stages;
      const int slot = slots[seq];
      valid = slot >= 0 && slot < pool.slots;
      out_offset = static_cast<int64_t>(seq) * heads * dv + static_cast<int64_t>(head) * dv;
      const float gamma = gammas[head];
      const Inputs in = next;
      load_inputs(i + 1, next);
      const float(&qf)[kMaxStreamRows] = in.qf;
      const float(&kf)[kMaxStreamRows] = in.kf;
      const float(&v_reg)[kVec] = in.v_reg;
      v_out = in.v_out;

      MbarrierWait(&barriers[stage], static_cast<unsigned>((i / stages) & 1));
      if (valid) {  // uniform over the block
        StateT* staged = buffer(stage);
        StateT* state = pool.data + StateOffset(pool, slot, heads, head, f_dim, dv);  // [F, Dv]
        if (slot != loaded_slot[stage]) {                                             // never under the launch rules
          const int64_t vectors = layout.item_bytes / 16;
          for (int64_t j = threadIdx.x; j < vectors; j += blockDim.x) {
            reinterpret_cast<uint4*>(staged)[j] = reinterpret_cast<const uint4*>(state)[j];
          }
          FenceProxyAsyncShared();  // before the copy that later refills this buffer
          __syncthreads();
        }
        float acc[kVec];
#pragma unroll
        for (int c = 0; c < kVec; ++c) acc[c] = 0.0f;
        float qk = 0.0f;
        // All rows from shared memory first, so that no load waits behind a
        // global store the compiler cannot prove disjoint.
        PackedT<StateT, kVec> raw[kMaxStreamRows];
#pragma unroll
        for (int r = 0; r < kMaxStreamRows; ++r) {
          const int f = ty + r * Tile::kTy;
          raw[r] = ZeroPacked<StateT, kVec>();
          if (f < f_dim && has_cols) {
            raw[r] = *reinterpret_cast<const PackedT<StateT, kVec>*>(staged + static_cast<int64_t>(f) * dv + col);
          }
        }
        UpdateRows<StateT, kVec, kMaxStreamRows, Tile::kTy>(raw, qf, kf, v_reg, gamma, ty, f_dim, has_cols, state, dv,
                                                            col, acc, qk);
        float* my_partial = partial_o + static_cast<int64_t>(tile) * Tile::kTy * Tile::kCols;
#pragma unroll
        for (int c = 0; c < kVec; ++c) my_partial[ty * Tile::kCols + tx * kVec + c] = acc[c];
        if (tx == 0) partial_qk[tile * Tile::kTy + ty] = qk;
      }
    }
    __syncthreads();  // S1: item i's buffer is read and its partial sums written; item i − 1's statistics written
    if (present && threadIdx.x == 0) {
      // Refill the buffer just read with the head `stages` items on.
      FenceProxyAsyncShared();
      issue(i + stages);
    }
    if (local < Tile::kCols) {
      const int c = tile * Tile::kCols + local;
      if (pending && c < dv) {
        const float* o_prev = o_all + ((i - 1) & 1) * o_stride;
        out[pending_out + c] = __float2bfloat16_rn((o_prev[c] - stats[0]) * stats[1]);
      }
      if (valid) {
        const float* my_partial = partial_o + static_cast<int64_t>(tile) * Tile::kTy * Tile::kCols;
        float o = 0.0f, qk_sum = 0.0f;
#pragma unroll 8
        for (int y = 0; y < Tile::kTy; ++y) o += my_partial[y * Tile::kCols + local];
#pragma unroll 8
        for (int y = 0; y < Tile::kTy; ++y) qk_sum += partial_qk[tile * Tile::kTy + y];
        o_all[(i & 1) * o_stride + c] = c < dv ? fmaf(qk_sum, v_out, o) : 0.0f;
      }
    }
    if (!present) break;  // the last item's output is written
    __syncthreads();      // S2: item i's o is complete
    if (valid && threadIdx.x < 32) {
      const float* o_cur = o_all + (i & 1) * o_stride;
      HeadNormStats(
          threadIdx.x, dv, [&](int c) { return o_cur[c]; }, stats);
    }
    pending = valid;
    pending_out = out_offset;
  }
}

// ---- launchers ------------------------------------------------------------

template <typename StateT, int kVec>
absl::Status LaunchCluster(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                           int64_t v_stride, const float* gammas, const int32_t* slots, int n,
                           const StatePoolLayer<StateT>& state, __nv_bfloat16* out, cudaStream_t stream) {
  const int tiles = (dims.value_dim + Tiling<kVec>::kCols - 1) / Tiling<kVec>::kCols;  // <= 8
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(dims.heads), static_cast<unsigned>(n));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  cudaLaunchAttribute attribute[2];
  attribute[0].id = cudaLaunchAttributeClusterDimension;
  attribute[0].val.clusterDim.x = static_cast<unsigned>(tiles);
  attribute[0].val.clusterDim.y = 1;
  attribute[0].val.clusterDim.z = 1;
  attribute[1] = ProgrammaticLaunchAttribute();
  config.attrs = attribute;
  config.numAttrs = 2;
  CUDA_RETURN_IF_ERROR(cudaLaunchKernelEx(&config, RecurrentAttentionKernel<StateT, kVec>, dims, q, k, v, v_stride,
                                          gammas, slots, state, out));
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

// The streaming kernel's shared-memory plan for these dims, or stages == 0
// where it does not apply (then the cluster kernel runs).
template <typename StateT, int kVec>
StreamLayout PlanStream(const AttentionDims& dims, int n, int max_shared_bytes) {
  using Tile = Tiling<kVec>;
  StreamLayout layout{};
  layout.item_bytes = int64_t{dims.features} * dims.value_dim * static_cast<int64_t>(sizeof(StateT));
  layout.tiles = (dims.value_dim + Tile::kCols - 1) / Tile::kCols;
  layout.cols = Tile::kCols;
  layout.row_groups = Tile::kTy;
  layout.stages = 0;
  if (layout.tiles * kThreads > 4 * kThreads || dims.features > kMaxStreamRows * Tile::kTy ||
      int64_t{n} * dims.heads > (int64_t{1} << 31) - 1) {
    return layout;
  }
  for (int stages = kMaxStages; stages >= 2; --stages) {
    layout.stages = stages;
    if (layout.total() <= max_shared_bytes) return layout;
  }
  layout.stages = 0;
  return layout;
}

template <typename StateT, int kVec>
absl::Status LaunchStream(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                          int64_t v_stride, const float* gammas, const int32_t* slots, int n,
                          const StatePoolLayer<StateT>& state, const StreamLayout& layout, int sms, __nv_bfloat16* out,
                          cudaStream_t stream) {
  auto* kernel = &RecurrentAttentionStreamKernel<StateT, kVec>;
  const int shared_bytes = static_cast<int>(layout.total());
  RETURN_IF_ERROR(EnsureDynamicSharedMemory(reinterpret_cast<const void*>(kernel), shared_bytes));
  const int64_t items = int64_t{n} * dims.heads;
  cudaLaunchAttribute attribute = ProgrammaticLaunchAttribute();
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(std::min<int64_t>(items, sms)));
  config.blockDim = dim3(static_cast<unsigned>(layout.tiles * kThreads));
  config.dynamicSmemBytes = static_cast<size_t>(shared_bytes);
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  CUDA_RETURN_IF_ERROR(
      cudaLaunchKernelEx(&config, kernel, dims, q, k, v, v_stride, gammas, slots, n, state, layout, out));
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

// SUPRA_DECODE_ATTENTION: "cluster" or "stream" forces a kernel (for
// measurements), a number N uses the streaming kernel from batch N on; unset
// (or anything else), from n·H >= 2 · SMs on (batch 9 at H = 32 on an H200).
// Read once.
constexpr int64_t kStreamMinItemsPerSm = 2;
int EnvStreamMinBatch() {
  static const int min_batch = [] {
    const char* value = std::getenv("SUPRA_DECODE_ATTENTION");
    if (value == nullptr) return -1;
    if (std::strcmp(value, "cluster") == 0) return 1 << 30;
    if (std::strcmp(value, "stream") == 0) return 0;
    const int parsed = std::atoi(value);
    return parsed > 0 ? parsed : -1;
  }();
  return min_batch;
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename StateT>
absl::Status LaunchAny(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                       int64_t v_stride, const float* gammas, const int32_t* slots, int n,
                       const StatePoolLayer<StateT>& state, __nv_bfloat16* out, cudaStream_t stream,
                       DecodeAttentionKernel which) {
  absl::Status status =
      attention_internal::ValidateAttentionArgs("recurrent attention", dims, q, k, v, v_stride, gammas, state, out, n);
  if (!status.ok()) return status;
  if (n > 65535) return absl::InvalidArgumentError(absl::StrCat("recurrent attention: batch ", n, " above 65535"));
  if (n == 0) return absl::OkStatus();
  if (slots == nullptr) return absl::InvalidArgumentError("recurrent attention: null slots");
  // 16-byte state accesses need every row of every head to start on a 16-byte
  // boundary: Dv a multiple of the vector and an aligned pool.
  constexpr int kVec = std::is_same_v<StateT, float> ? 4 : 8;
  if (dims.value_dim % kVec != 0 || !Aligned16(state.data)) {
    return LaunchCluster<StateT, 1>(dims, q, k, v, v_stride, gammas, slots, n, state, out, stream);
  }
  if (which != DecodeAttentionKernel::kCluster) {
    ASSIGN_OR_RETURN(const DeviceLimits limits, CurrentDeviceLimits());
    const int sms = limits.sms, max_shared = limits.max_shared_per_block;
    bool stream_kernel = which == DecodeAttentionKernel::kStream;
    if (which == DecodeAttentionKernel::kAuto) {
      const int env_min_batch = EnvStreamMinBatch();
      stream_kernel = env_min_batch >= 0 ? n >= env_min_batch : int64_t{n} * dims.heads >= kStreamMinItemsPerSm * sms;
    }
    if (stream_kernel) {
      const StreamLayout layout = PlanStream<StateT, kVec>(dims, n, max_shared);
      if (layout.stages > 0) {
        return LaunchStream<StateT, kVec>(dims, q, k, v, v_stride, gammas, slots, n, state, layout, sms, out, stream);
      }
    }
  }
  return LaunchCluster<StateT, kVec>(dims, q, k, v, v_stride, gammas, slots, n, state, out, stream);
}

}  // namespace

absl::Status LaunchRecurrentAttention(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                                      int64_t v_stride, const float* gammas, const int32_t* slots, int n,
                                      StatePoolLayer<float> state, __nv_bfloat16* out, cudaStream_t stream,
                                      DecodeAttentionKernel kernel) {
  return LaunchAny(dims, q, k, v, v_stride, gammas, slots, n, state, out, stream, kernel);
}

absl::Status LaunchRecurrentAttention(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                                      int64_t v_stride, const float* gammas, const int32_t* slots, int n,
                                      StatePoolLayer<__nv_bfloat16> state, __nv_bfloat16* out, cudaStream_t stream,
                                      DecodeAttentionKernel kernel) {
  return LaunchAny(dims, q, k, v, v_stride, gammas, slots, n, state, out, stream, kernel);
}

}  // namespace supra::cuda

#include <cooperative_groups.h>

#include <cstdint>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "engine/cuda/attention_common.cuh"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/programmatic_launch.cuh"
#include "engine/cuda/recurrent_attention.h"

namespace supra::cuda {
namespace {

namespace cg = cooperative_groups;
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

// A block covers kCols = kTx · kVec columns of Dv and all F rows; kTx threads
// share a state row (kVec consecutive columns each, 16 bytes with the vector
// paths: 4 fp32 or 8 bf16), kTy row groups stride over F.
template <int kVec>
struct Tiling {
  static constexpr int kTx = kVec == 1 ? 32 : 8;
  static constexpr int kTy = kThreads / kTx;
  static constexpr int kCols = kTx * kVec;
};

// Asks L2 to fetch the line holding p (no register result, no ordering).
__device__ __forceinline__ void PrefetchL2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

template <typename T, int kVec>
__device__ __forceinline__ void LoadStreaming(const T* p, float (&out)[kVec]) {
  if constexpr (std::is_same_v<T, float> && kVec == 4) {
    const float4 x = __ldcs(reinterpret_cast<const float4*>(p));
    out[0] = x.x, out[1] = x.y, out[2] = x.z, out[3] = x.w;
  } else if constexpr (std::is_same_v<T, __nv_bfloat16> && kVec == 8) {
    const uint4 raw = __ldcs(reinterpret_cast<const uint4*>(p));
    const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(pairs[i]);
      out[2 * i] = f.x, out[2 * i + 1] = f.y;
    }
  } else {
    static_assert(kVec == 1, "unsupported state vector");
    out[0] = ToFloat(__ldcs(p));
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

// Grid (tiles, H, n), cluster (tiles, 1, 1): the blocks of one cluster are the
// Dv tiles of one (sequence, head). Each thread streams its rows of P once
// (load, o += q_f·P_f, store γ(P_f + k_f v)); the block reduces o over its row
// groups; the cluster then shares the o tiles for the GroupNorm statistics.
//
// Programmatic launch (programmatic_launch.cuh): while the previous kernel
// (the feature map) finishes, the block asks L2 for its state rows; it reads
// everything, the state included, after the wait.
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

  // While the previous kernel finishes: have L2 fetch this block's state rows
  // (one 128-byte line per row and thread group at the sizes that matter).
  // Only a prefetch, so whatever writes the slots or the state, and whenever,
  // results do not depend on it; the slot is read again after the wait.
  {
    const int early_slot = slots[seq];
    if (early_slot >= 0 && early_slot < pool.slots && has_cols && tx == 0) {
      const StateT* early_state = pool.data + StateOffset(pool, early_slot, heads, head, f_dim, dv);
      for (int f = ty; f < f_dim; f += Tile::kTy) PrefetchL2(early_state + static_cast<int64_t>(f) * dv + col);
    }
  }
  WaitForPreviousKernel();
  AllowNextKernel();

  const int slot = slots[seq];
  // Every block of the cluster has the same sequence, so all leave together
  // and none waits at a cluster barrier for a block that left.
  if (slot < 0 || slot >= pool.slots) return;

  const float* qh = q + static_cast<int64_t>(seq) * heads * f_dim + static_cast<int64_t>(head) * f_dim;
  const float* kh = k + static_cast<int64_t>(seq) * dims.key_heads * f_dim +
                    static_cast<int64_t>(head / (heads / dims.key_heads)) * f_dim;
  const __nv_bfloat16* vh = v + seq * v_stride + static_cast<int64_t>(head / (heads / dims.value_heads)) * dv;
  StateT* state = pool.data + StateOffset(pool, slot, heads, head, f_dim, dv);  // [F, Dv]
  const float gamma = gammas[head];

  float v_reg[kVec];
#pragma unroll
  for (int c = 0; c < kVec; ++c) v_reg[c] = has_cols ? __bfloat162float(vh[col + c]) : 0.0f;

  float acc[kVec];
#pragma unroll
  for (int c = 0; c < kVec; ++c) acc[c] = 0.0f;
  float qk = 0.0f;
  for (int f0 = ty; f0 < f_dim; f0 += kRowsPerPass * Tile::kTy) {
    float p[kRowsPerPass][kVec];
    float qf[kRowsPerPass], kf[kRowsPerPass];
#pragma unroll
    for (int r = 0; r < kRowsPerPass; ++r) {
      const int f = f0 + r * Tile::kTy;
      qf[r] = 0.0f, kf[r] = 0.0f;
#pragma unroll
      for (int c = 0; c < kVec; ++c) p[r][c] = 0.0f;
      if (f < f_dim) {
        qf[r] = qh[f], kf[r] = kh[f];
        if (has_cols) LoadStreaming<StateT, kVec>(state + static_cast<int64_t>(f) * dv + col, p[r]);
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerPass; ++r) {
      const int f = f0 + r * Tile::kTy;
      if (f < f_dim) {
        qk = fmaf(qf[r], kf[r], qk);
        if (has_cols) {
#pragma unroll
          for (int c = 0; c < kVec; ++c) {
            acc[c] = fmaf(qf[r], p[r][c], acc[c]);
            p[r][c] = gamma * fmaf(kf[r], v_reg[c], p[r][c]);
          }
          StoreStreaming<StateT, kVec>(state + static_cast<int64_t>(f) * dv + col, p[r]);
        }
      }
    }
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
    const int lane = threadIdx.x;
    float values[kStatsPerLane];
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kStatsPerLane; ++i) {
      const int c = lane + 32 * i;
      values[i] = 0.0f;
      if (c < dv) {
        const float* remote = cluster.map_shared_rank(o_tile, c / Tile::kCols);
        values[i] = remote[c % Tile::kCols];
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
  __syncthreads();
  if (threadIdx.x < Tile::kCols) {
    const int c = tile * Tile::kCols + threadIdx.x;
    if (c < dv) {
      out[static_cast<int64_t>(seq) * heads * dv + static_cast<int64_t>(head) * dv + c] =
          __float2bfloat16_rn((o_tile[threadIdx.x] - stats[0]) * stats[1]);
    }
  }
  // Keep o_tile alive until every block of the cluster has read it.
  cluster.sync();
}

template <typename StateT, int kVec>
absl::Status Launch(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v, int64_t v_stride,
                    const float* gammas, const int32_t* slots, int n, const StatePoolLayer<StateT>& state,
                    __nv_bfloat16* out, cudaStream_t stream) {
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

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename StateT>
absl::Status LaunchAny(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                       int64_t v_stride, const float* gammas, const int32_t* slots, int n,
                       const StatePoolLayer<StateT>& state, __nv_bfloat16* out, cudaStream_t stream) {
  absl::Status status =
      attention_internal::ValidateAttentionArgs("recurrent attention", dims, q, k, v, v_stride, gammas, state, out, n);
  if (!status.ok()) return status;
  if (n > 65535) return absl::InvalidArgumentError(absl::StrCat("recurrent attention: batch ", n, " above 65535"));
  if (n == 0) return absl::OkStatus();
  if (slots == nullptr) return absl::InvalidArgumentError("recurrent attention: null slots");
  // 16-byte state accesses need every row of every head to start on a 16-byte
  // boundary: Dv a multiple of the vector and an aligned pool.
  constexpr int kVec = std::is_same_v<StateT, float> ? 4 : 8;
  if (dims.value_dim % kVec == 0 && Aligned16(state.data)) {
    return Launch<StateT, kVec>(dims, q, k, v, v_stride, gammas, slots, n, state, out, stream);
  }
  return Launch<StateT, 1>(dims, q, k, v, v_stride, gammas, slots, n, state, out, stream);
}

}  // namespace

absl::Status LaunchRecurrentAttention(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                                      int64_t v_stride, const float* gammas, const int32_t* slots, int n,
                                      StatePoolLayer<float> state, __nv_bfloat16* out, cudaStream_t stream) {
  return LaunchAny(dims, q, k, v, v_stride, gammas, slots, n, state, out, stream);
}

absl::Status LaunchRecurrentAttention(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                                      int64_t v_stride, const float* gammas, const int32_t* slots, int n,
                                      StatePoolLayer<__nv_bfloat16> state, __nv_bfloat16* out, cudaStream_t stream) {
  return LaunchAny(dims, q, k, v, v_stride, gammas, slots, n, state, out, stream);
}

}  // namespace supra::cuda

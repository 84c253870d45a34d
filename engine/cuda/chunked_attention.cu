#include <cooperative_groups.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "engine/cuda/attention_common.cuh"
#include "engine/cuda/chunked_attention.h"
#include "engine/cuda/chunked_attention_two_pass.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_limits.h"
#include "engine/util/status_macros.h"

namespace supra::cuda {
namespace {

namespace cg = cooperative_groups;
using attention_internal::ClusterArrive;
using attention_internal::ClusterWait;
using attention_internal::CpAsync16;
using attention_internal::CpAsyncCommit;
using attention_internal::CpAsyncWaitAll;
using attention_internal::FromFloat;
using attention_internal::StateOffset;
using attention_internal::ToFloat;

constexpr int kThreads = 256;
constexpr int kT = kChunkedAttentionSubChunk;  // rows of one sub-chunk
constexpr int kTD = 32;                        // Dv columns per block
constexpr int kLdT = kT + 4;                   // row stride of Sw [kT, kT]: float4-aligned
constexpr int kLdS = kT + 8;                   // row stride of the partial scores: conflict-free scalar stores
constexpr int kVPerThread = kT * kTD / kThreads;
constexpr int kMaxTiles = kMaxAttentionValueDim / kTD;  // blocks per cluster
static_assert(kT == 64 && kTD == 32 && kThreads == 256, "the thread mappings below assume these sizes");

// Shared memory of one block, in floats (every offset a multiple of 4, so
// float4 accesses stay aligned): 109 KiB at F = 128, so that two blocks fit
// on an SM (with one, 4-block clusters need two waves for 128 blocks: at most
// 30 clusters of 4 are resident on an H200).
struct SmemLayout {
  int f_pad;    // F rounded up to a multiple of 4 (padding columns and rows are zero)
  int ld_qk;    // row stride of the Q and K̃ tiles: f_pad + 4 staggers rows over the banks
  int ps;       // [f_pad, kTD]  the state tile, for the whole chunk
  int qr;       // [kT, ld_qk]   Q rows, then (once Q·P is done) Sw [kT, kLdT]:
                //               Sw[j][i] = γ^{i−j} q_i·k̃_j for j ≤ i, else 0
  int kr;       // [kT, ld_qk]   K̃ rows
  int vs;       // [kT, kTD]     V tile in fp32
  int st_part;  // [kT, kLdS]    this block's partial scores St[j][i] over its features (read by the cluster)
  int decay;    // [kT + 1]      γ^t
  int stats;    // [kT] float2   per row: sum and squared deviations over this block's columns (read by the cluster)
  int total;
};

__host__ __device__ inline SmemLayout MakeLayout(int f_dim) {
  SmemLayout l{};
  l.f_pad = (f_dim + 3) / 4 * 4;
  l.ld_qk = l.f_pad + 4;
  const int q_region = kT * l.ld_qk > kT * kLdT ? kT * l.ld_qk : kT * kLdT;
  l.ps = 0;
  l.qr = l.ps + l.f_pad * kTD;
  l.kr = l.qr + q_region;
  l.vs = l.kr + kT * l.ld_qk;
  l.st_part = l.vs + kT * kTD;
  l.decay = l.st_part + kT * kLdS;
  l.stats = l.decay + kT + 4;
  l.total = l.stats + 2 * kT;
  return l;
}

__device__ __forceinline__ void Fma4x4(float (&acc)[4][4], float4 a, float4 b) {
  const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
  for (int r = 0; r < 4; ++r) {
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
  }
}

__device__ __forceinline__ float Dot4(float4 a, float4 b, float acc) {
  return fmaf(a.w, b.w, fmaf(a.z, b.z, fmaf(a.y, b.y, fmaf(a.x, b.x, acc))));
}

// dst[i][f] = src[i][f] for i < len, f < F; zero elsewhere up to [kT, f_pad].
// Vector path (F % 4 == 0, 16-byte aligned rows): asynchronous 16-byte copies,
// complete after the caller's commit and wait. Otherwise plain loads.
__device__ __forceinline__ void LoadTile(const float* __restrict__ src,  // [len, ld]
                                         int64_t ld, int len, int f_dim, const SmemLayout& lay, bool vec,
                                         float* __restrict__ dst) {  // [kT, ld_qk]
  if (vec) {
    const int f4s = f_dim / 4;
    for (int u = threadIdx.x; u < kT * f4s; u += kThreads) {
      const int i = u / f4s, f = u % f4s * 4;
      const bool valid = i < len;
      CpAsync16(dst + i * lay.ld_qk + f, valid ? src + i * ld + f : src, valid);
    }
  } else {
    for (int u = threadIdx.x; u < kT * lay.f_pad; u += kThreads) {
      const int i = u / lay.f_pad, f = u % lay.f_pad;
      dst[i * lay.ld_qk + f] = i < len && f < f_dim ? __ldg(src + i * ld + f) : 0.0f;
    }
  }
}

// The sub-chunk's V tile in fp32, zero past len and past Dv.
__device__ __forceinline__ void LoadV(const __nv_bfloat16* __restrict__ v_rows,  // [len, v_stride]
                                      int64_t v_stride, int len, int d0, int dv, float* __restrict__ vs) {
#pragma unroll
  for (int m = 0; m < kVPerThread; ++m) {
    const int e = threadIdx.x + m * kThreads, j = e / kTD, d = d0 + e % kTD;
    vs[e] = j < len && d < dv ? __bfloat162float(v_rows[j * v_stride + d]) : 0.0f;
  }
}

// Grid (tiles, H, chunks), cluster (tiles, 1, 1): the blocks of a cluster
// are the Dv tiles of one (chunk, head); block `rank` owns columns
// [32·rank, 32·rank + 32) of the head's state and output. Two blocks per SM
// (so at most 128 registers per thread).
template <typename StateT>
__global__ void __launch_bounds__(kThreads, 2)
    ChunkedAttentionSimtKernel(AttentionDims dims,
                               const float* __restrict__ q,          // [rows, H·F]
                               const float* __restrict__ k,          // [rows, Hk·F]
                               const __nv_bfloat16* __restrict__ v,  // [rows, v_stride]
                               int64_t v_stride,
                               const float* __restrict__ gammas,               // [H]
                               const AttentionChunkDesc* __restrict__ chunks,  // [chunks]
                               int rows, bool vec_qk,
                               StatePoolLayer<StateT> pool,        // [slots, layers, H, F, Dv]
                               __nv_bfloat16* __restrict__ out) {  // [rows, H·Dv]
  extern __shared__ __align__(16) float smem[];
  const AttentionChunkDesc chunk = chunks[blockIdx.z];
  // The same chunk for every block of the cluster: all leave together.
  if (chunk.length <= 0 || chunk.row_begin < 0 || chunk.row_begin > rows - chunk.length || chunk.slot < 0 ||
      chunk.slot >= pool.slots) {
    return;
  }
  const int heads = dims.heads, f_dim = dims.features, dv = dims.value_dim;
  const SmemLayout lay = MakeLayout(f_dim);
  float* ps = smem + lay.ps;
  float* qb = smem + lay.qr;  // [kT, ld_qk]
  float* sw = smem + lay.qr;  // [kT, kLdT], once Q is dead
  float* kb = smem + lay.kr;  // [kT, ld_qk]
  float* vs = smem + lay.vs;
  float* st_part = smem + lay.st_part;
  float* decay = smem + lay.decay;
  float2* stats = reinterpret_cast<float2*>(smem + lay.stats);

  cg::cluster_group cluster = cg::this_cluster();
  const int rank = blockIdx.x, tiles = gridDim.x, head = blockIdx.y;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int d0 = rank * kTD;

  const float gamma = gammas[head];
  if (tid <= kT) {
    decay[tid] = tid == 0 ? 1.0f : static_cast<float>(exp(static_cast<double>(tid) * log(static_cast<double>(gamma))));
  }
  StateT* state = pool.data + StateOffset(pool, chunk.slot, heads, head, f_dim, dv);  // [F, Dv]
  for (int e = tid; e < lay.f_pad * kTD; e += kThreads) {
    const int f = e / kTD, d = d0 + e % kTD;
    ps[e] = f < f_dim && d < dv ? ToFloat(state[static_cast<int64_t>(f) * dv + d]) : 0.0f;
  }

  const int64_t ldq = static_cast<int64_t>(heads) * f_dim, ldk = static_cast<int64_t>(dims.key_heads) * f_dim;
  const int64_t ldo = static_cast<int64_t>(heads) * dv;
  const float* q_base = q + chunk.row_begin * ldq + static_cast<int64_t>(head) * f_dim;
  const float* k_base = k + chunk.row_begin * ldk + static_cast<int64_t>(head / (heads / dims.key_heads)) * f_dim;
  const __nv_bfloat16* v_base =
      v + chunk.row_begin * v_stride + static_cast<int64_t>(head / (heads / dims.value_heads)) * dv;
  __nv_bfloat16* out_base = out + chunk.row_begin * ldo + static_cast<int64_t>(head) * dv;
  // This block's feature quads for the partial scores.
  const int quads = lay.f_pad / 4;
  const int quad_begin = quads * rank / tiles, quad_end = quads * (rank + 1) / tiles;
  // Thread roles in the products: rows 2rp, 2rp+1 of O (warp w has rows
  // [8w, 8w+8)); rows 4rp..4rp+3 of the state tile; columns 4cq..4cq+3.
  const int cq = lane % 8, rp = warp * 4 + lane / 8;

  __syncthreads();  // decay table and state tile

  for (int s0 = 0; s0 < chunk.length; s0 += kT) {
    const int len = min(kT, chunk.length - s0);
    LoadTile(q_base + s0 * ldq, ldq, len, f_dim, lay, vec_qk, qb);
    LoadTile(k_base + s0 * ldk, ldk, len, f_dim, lay, vec_qk, kb);
    CpAsyncCommit();
    LoadV(v_base + s0 * v_stride, v_stride, len, d0, dv, vs);
    CpAsyncWaitAll();
    __syncthreads();

    // 1. Partial scores St[j][i] = Σ_{f in this block's quads} k̃_j[f] q_i[f]:
    // warp w covers j in [16·(w/2), +16), i in [32·(w%2), +32); a thread has
    // rows j0 + 4r and i0 + 8c (consecutive rows across lanes: no bank
    // conflicts). Warps wholly above the diagonal or past len skip.
    {
      const int j_lo = (warp / 2) * 16, i_lo = (warp % 2) * 32;
      if (j_lo <= i_lo + 31 && j_lo < len && i_lo < len) {
        const int j0 = j_lo + lane / 8, i0 = i_lo + lane % 8;
        float acc[4][4] = {};
        for (int qd = quad_begin; qd < quad_end; ++qd) {
          float4 a[4], b[4];
#pragma unroll
          for (int r = 0; r < 4; ++r) a[r] = *reinterpret_cast<const float4*>(kb + (j0 + 4 * r) * lay.ld_qk + 4 * qd);
#pragma unroll
          for (int c = 0; c < 4; ++c) b[c] = *reinterpret_cast<const float4*>(qb + (i0 + 8 * c) * lay.ld_qk + 4 * qd);
#pragma unroll
          for (int r = 0; r < 4; ++r) {
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[r][c] = Dot4(a[r], b[c], acc[r][c]);
          }
        }
#pragma unroll
        for (int r = 0; r < 4; ++r) {
#pragma unroll
          for (int c = 0; c < 4; ++c) st_part[(j0 + 4 * r) * kLdS + i0 + 8 * c] = acc[r][c];
        }
      }
    }
    ClusterArrive();  // (1) partial scores published

    // 2. While the cluster catches up: the carried-state part Q·P.
    float acc_p[2][4] = {};
#pragma unroll 2
    for (int qd = 0; qd < quads; ++qd) {
      const float4 a0 = *reinterpret_cast<const float4*>(qb + (2 * rp) * lay.ld_qk + 4 * qd);
      const float4 a1 = *reinterpret_cast<const float4*>(qb + (2 * rp + 1) * lay.ld_qk + 4 * qd);
      float4 b[4];
#pragma unroll
      for (int m = 0; m < 4; ++m) b[m] = *reinterpret_cast<const float4*>(ps + (4 * qd + m) * kTD + 4 * cq);
      const float a[2][4] = {{a0.x, a0.y, a0.z, a0.w}, {a1.x, a1.y, a1.z, a1.w}};
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        acc_p[r][0] =
            fmaf(a[r][3], b[3].x, fmaf(a[r][2], b[2].x, fmaf(a[r][1], b[1].x, fmaf(a[r][0], b[0].x, acc_p[r][0]))));
        acc_p[r][1] =
            fmaf(a[r][3], b[3].y, fmaf(a[r][2], b[2].y, fmaf(a[r][1], b[1].y, fmaf(a[r][0], b[0].y, acc_p[r][1]))));
        acc_p[r][2] =
            fmaf(a[r][3], b[3].z, fmaf(a[r][2], b[2].z, fmaf(a[r][1], b[1].z, fmaf(a[r][0], b[0].z, acc_p[r][2]))));
        acc_p[r][3] =
            fmaf(a[r][3], b[3].w, fmaf(a[r][2], b[2].w, fmaf(a[r][1], b[1].w, fmaf(a[r][0], b[0].w, acc_p[r][3]))));
      }
    }
    ClusterWait();    // (1)
    __syncthreads();  // every thread is done with Q: Sw takes its place

    // 3. Sw[j][i] = γ^{i−j} Σ_ranks St[j][i] for j ≤ i < len, else 0, summed
    // in rank order (every block of the cluster gets the same scores).
    for (int e = tid; e < kT * (kT / 4); e += kThreads) {
      const int j = e / (kT / 4), i4 = e % (kT / 4) * 4;
      float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      if (j < len && j <= i4 + 3 && i4 < len) {
        float4 part[kMaxTiles];
#pragma unroll
        for (int r = 0; r < kMaxTiles; ++r) {
          part[r] = r < tiles ? *reinterpret_cast<const float4*>(cluster.map_shared_rank(st_part, r) + j * kLdS + i4)
                              : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        float sv[4] = {part[0].x, part[0].y, part[0].z, part[0].w};
#pragma unroll
        for (int r = 1; r < kMaxTiles; ++r) {
          if (r < tiles) sv[0] += part[r].x, sv[1] += part[r].y, sv[2] += part[r].z, sv[3] += part[r].w;
        }
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int i = i4 + c;
          s[c] = j <= i && i < len ? sv[c] * decay[max(i - j, 0)] : 0.0f;
        }
      }
      *reinterpret_cast<float4*>(sw + j * kLdT + i4) = make_float4(s[0], s[1], s[2], s[3]);
    }
    __syncthreads();

    // 4. O = diag(γ^i)·Q·P + Sw·V (warp w's scores end at j = 8w + 7).
    float o[2][4];
    {
      float acc_s[2][4] = {};
      const int j_end = min(len, warp * 8 + 8);
#pragma unroll 4
      for (int j = 0; j < j_end; ++j) {
        const float2 a = *reinterpret_cast<const float2*>(sw + j * kLdT + 2 * rp);
        const float4 b = *reinterpret_cast<const float4*>(vs + j * kTD + 4 * cq);
        const float av[2] = {a.x, a.y}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
        for (int r = 0; r < 2; ++r) {
#pragma unroll
          for (int c = 0; c < 4; ++c) acc_s[r][c] = fmaf(av[r], bv[c], acc_s[r][c]);
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int c = 0; c < 4; ++c) o[r][c] = fmaf(decay[2 * rp + r], acc_p[r][c], acc_s[r][c]);
      }
    }

    // 5. GroupNorm statistics of this block's columns (8 lanes share a row):
    // the sum and the squared deviations from the block's own mean, combined
    // over the cluster below (Chan et al.: exact, one exchange).
    const int cols_here = min(kTD, dv - d0);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = 0.0f;
#pragma unroll
      for (int c = 0; c < 4; ++c) sum += 4 * cq + c < cols_here ? o[r][c] : 0.0f;
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      sum += __shfl_xor_sync(0xffffffffu, sum, 4);
      const float mean_here = sum / static_cast<float>(cols_here);
      float m2 = 0.0f;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const float d = o[r][c] - mean_here;
        m2 += 4 * cq + c < cols_here ? d * d : 0.0f;
      }
      m2 += __shfl_xor_sync(0xffffffffu, m2, 1);
      m2 += __shfl_xor_sync(0xffffffffu, m2, 2);
      m2 += __shfl_xor_sync(0xffffffffu, m2, 4);
      if (cq == 0) stats[2 * rp + r] = make_float2(sum, m2);
    }
    ClusterArrive();  // (2) statistics published

    // 6. While the cluster catches up: P ← γ^len P + Σ_j (γ^{len−j} k̃_j)ᵀ v_j,
    // rows 4rp..4rp+3 of the state tile (every thread is past step 2's reads
    // of P: they preceded the barrier after step 3).
    if (4 * rp < lay.f_pad) {
      float acc[4][4] = {};
#pragma unroll 4
      for (int j = 0; j < len; ++j) {
        const float w = decay[len - j];
        float4 a = *reinterpret_cast<const float4*>(kb + j * lay.ld_qk + 4 * rp);
        a.x *= w, a.y *= w, a.z *= w, a.w *= w;
        Fma4x4(acc, a, *reinterpret_cast<const float4*>(vs + j * kTD + 4 * cq));
      }
      const float g = decay[len];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        float4* p = reinterpret_cast<float4*>(ps + (4 * rp + r) * kTD + 4 * cq);
        float4 x = *p;
        x.x = fmaf(g, x.x, acc[r][0]), x.y = fmaf(g, x.y, acc[r][1]);
        x.z = fmaf(g, x.z, acc[r][2]), x.w = fmaf(g, x.w, acc[r][3]);
        *p = x;
      }
    }
    ClusterWait();  // (2)

    // 7. Combine the statistics and write the normalised rows.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int i = 2 * rp + r;
      float2 part[kMaxTiles];
#pragma unroll
      for (int b = 0; b < kMaxTiles; ++b) {
        part[b] = b < tiles ? cluster.map_shared_rank(stats, b)[i] : make_float2(0.0f, 0.0f);
      }
      float total = 0.0f;
#pragma unroll
      for (int b = 0; b < kMaxTiles; ++b) total += part[b].x;
      const float mean = total / static_cast<float>(dv);
      float m2 = 0.0f;
#pragma unroll
      for (int b = 0; b < kMaxTiles; ++b) {
        if (b < tiles) {
          const float n_b = static_cast<float>(min(kTD, dv - b * kTD));
          const float d = part[b].x / n_b - mean;
          m2 += part[b].y + n_b * d * d;
        }
      }
      const float inv_std = 1.0f / sqrtf(m2 / static_cast<float>(dv) + kGroupNormEps);
      if (i < len) {
        __nv_bfloat16* o_row = out_base + (s0 + i) * ldo;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int d = d0 + 4 * cq + c;
          if (d < dv) o_row[d] = __float2bfloat16_rn((o[r][c] - mean) * inv_std);
        }
      }
    }
    __syncthreads();  // before the next sub-chunk overwrites the tiles
  }

  for (int e = tid; e < f_dim * kTD; e += kThreads) {
    const int f = e / kTD, d = d0 + e % kTD;
    if (d < dv) state[static_cast<int64_t>(f) * dv + d] = FromFloat<StateT>(ps[e]);
  }
  // Keep the statistics alive until every block of the cluster has read them.
  cluster.sync();
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The SIMT kernel over chunks [0, num_chunks) (valid arguments, >= 1 chunk).
template <typename StateT>
absl::Status LaunchSimt(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                        int64_t v_stride, const float* gammas, const AttentionChunkDesc* chunks, int num_chunks,
                        int rows, const StatePoolLayer<StateT>& state, __nv_bfloat16* out, cudaStream_t stream) {
  const int tiles = (dims.value_dim + kTD - 1) / kTD;  // <= 8: a portable cluster
  const bool vec_qk = dims.features % 4 == 0 && Aligned16(q) && Aligned16(k);
  const size_t smem_bytes = static_cast<size_t>(MakeLayout(dims.features).total) * sizeof(float);
  auto* kernel = &ChunkedAttentionSimtKernel<StateT>;
  RETURN_IF_ERROR(EnsureDynamicSharedMemory(reinterpret_cast<const void*>(kernel), static_cast<int>(smem_bytes)));
  cudaLaunchConfig_t config = {};
  config.gridDim =
      dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(dims.heads), static_cast<unsigned>(num_chunks));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeClusterDimension;
  attribute[0].val.clusterDim.x = static_cast<unsigned>(tiles);
  attribute[0].val.clusterDim.y = 1;
  attribute[0].val.clusterDim.z = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  CUDA_RETURN_IF_ERROR(
      cudaLaunchKernelEx(&config, kernel, dims, q, k, v, v_stride, gammas, chunks, rows, vec_qk, state, out));
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

inline constexpr int64_t kTwoPassMinSubChunksPerChunk = 2;

// The two-pass kernels over the chunks, packed greedily (in descriptor
// order) into launches whose sub-chunks fit the workspace; a chunk too long
// for the workspace alone runs on the SIMT kernel. With `whole_or_nothing`
// (kAuto), everything runs on the SIMT kernel unless one launch takes it all
// and the chunks average at least kTwoPassMinSubChunksPerChunk sub-chunks.
template <typename StateT>
absl::Status LaunchTwoPassPacked(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                                 int64_t v_stride, const float* gammas, const AttentionChunkDesc* chunks,
                                 int num_chunks, int rows, const StatePoolLayer<StateT>& state, __nv_bfloat16* out,
                                 cudaStream_t stream, ChunkedAttentionWorkspace& workspace,
                                 const AttentionChunkDesc* host_chunks, bool whole_or_nothing) {
  const int64_t capacity = workspace.StateCapacity(dims);
  if (whole_or_nothing) {
    int64_t total = 0, valid = 0;
    for (int c = 0; c < num_chunks; ++c) {
      const int64_t count = attention_internal::SubChunksOf(host_chunks[c], rows, state.slots);
      total += count;
      valid += count > 0 ? 1 : 0;
    }
    if (total == 0) return absl::OkStatus();  // every chunk skipped
    // Chunks of one sub-chunk (64 rows or fewer) on average: the SIMT kernel.
    // On the H200 (CudaAttentionTiming, Mistral shapes) the two-pass kernels
    // ran a 1 × 2048 prompt fed as 32 rounds of one 64-row chunk at 0.61× the
    // SIMT kernel's speed (three launches for little work), and 8 × 256 (four
    // sub-chunks a chunk) at 1.18×.
    if (total > capacity || total < kTwoPassMinSubChunksPerChunk * valid) {
      return LaunchSimt(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state, out, stream);
    }
    return attention_internal::LaunchChunkedAttentionTwoPass(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows,
                                                             state, out, stream, workspace, total);
  }
  int first = 0;       // first chunk of the launch being packed
  int64_t packed = 0;  // its sub-chunks
  auto flush = [&](int end) -> absl::Status {
    const int begin = first;
    const int64_t sub_chunks = packed;
    first = end;
    packed = 0;
    if (sub_chunks == 0) return absl::OkStatus();
    return attention_internal::LaunchChunkedAttentionTwoPass(
        dims, q, k, v, v_stride, gammas, chunks + begin, end - begin, rows, state, out, stream, workspace, sub_chunks);
  };
  for (int c = 0; c < num_chunks; ++c) {
    const int64_t count = attention_internal::SubChunksOf(host_chunks[c], rows, state.slots);
    if (count > capacity) {
      const absl::Status flushed = flush(c);
      if (!flushed.ok()) return flushed;
      const absl::Status alone = LaunchSimt(dims, q, k, v, v_stride, gammas, chunks + c, 1, rows, state, out, stream);
      if (!alone.ok()) return alone;
      first = c + 1;
      continue;
    }
    if (packed + count > capacity) {
      const absl::Status flushed = flush(c);
      if (!flushed.ok()) return flushed;
    }
    packed += count;
  }
  return flush(num_chunks);
}

template <typename StateT>
absl::Status LaunchAny(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                       int64_t v_stride, const float* gammas, const AttentionChunkDesc* chunks, int num_chunks,
                       int rows, const StatePoolLayer<StateT>& state, __nv_bfloat16* out, cudaStream_t stream,
                       ChunkedAttentionKernel which, ChunkedAttentionWorkspace* workspace,
                       const AttentionChunkDesc* host_chunks) {
  absl::Status status =
      attention_internal::ValidateAttentionArgs("chunked attention", dims, q, k, v, v_stride, gammas, state, out, rows);
  if (!status.ok()) return status;
  if (dims.features > kMaxChunkedAttentionFeatures) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunked attention: F=", dims.features, " above ", kMaxChunkedAttentionFeatures));
  }
  if (num_chunks < 0 || num_chunks > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("chunked attention: ", num_chunks, " chunks (at most 65535)"));
  }
  if (num_chunks == 0 || rows == 0) return absl::OkStatus();
  if (chunks == nullptr) return absl::InvalidArgumentError("chunked attention: null chunks");
  const bool two_pass = (which == ChunkedAttentionKernel::kTwoPass || which == ChunkedAttentionKernel::kAuto) &&
                        workspace != nullptr && host_chunks != nullptr && attention_internal::TwoPassSupports(dims);
  if (two_pass) {
    return LaunchTwoPassPacked(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state, out, stream,
                               *workspace, host_chunks, /*whole_or_nothing=*/which == ChunkedAttentionKernel::kAuto);
  }
  return LaunchSimt(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state, out, stream);
}

}  // namespace

absl::Status LaunchChunkedAttention(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                                    int64_t v_stride, const float* gammas, const AttentionChunkDesc* chunks,
                                    int num_chunks, int rows, StatePoolLayer<float> state, __nv_bfloat16* out,
                                    cudaStream_t stream, ChunkedAttentionKernel kernel,
                                    ChunkedAttentionWorkspace* workspace, const AttentionChunkDesc* host_chunks) {
  return LaunchAny(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state, out, stream, kernel, workspace,
                   host_chunks);
}

absl::Status LaunchChunkedAttention(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                                    int64_t v_stride, const float* gammas, const AttentionChunkDesc* chunks,
                                    int num_chunks, int rows, StatePoolLayer<__nv_bfloat16> state, __nv_bfloat16* out,
                                    cudaStream_t stream, ChunkedAttentionKernel kernel,
                                    ChunkedAttentionWorkspace* workspace, const AttentionChunkDesc* host_chunks) {
  return LaunchAny(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state, out, stream, kernel, workspace,
                   host_chunks);
}

}  // namespace supra::cuda

// The chunked attention kernel on tensor cores (3xTF32); the layout and the
// error analysis are in chunked_attention_tc.h.
#include <cooperative_groups.h>

#include <cstdint>

#include "engine/cuda/attention_common.cuh"
#include "engine/cuda/chunked_attention_mma.cuh"
#include "engine/cuda/chunked_attention_tc.h"
#include "engine/cuda/cuda_status.h"

namespace supra::cuda::attention_internal {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 256;
constexpr int kT = kChunkedAttentionSubChunk;  // rows of one sub-chunk
constexpr int kTD = 32;                        // Dv columns per block
constexpr int kLdV = 40;                       // bf16 per V row: 20 words, B fragments conflict-free
constexpr int kLdP = 40;                       // floats per row of P hi/lo: ≡ 8 mod 32, B fragments conflict-free
constexpr int kLdSw = kT + 4;                  // floats per row of Sw hi/lo: ≡ 4 mod 32, A fragments conflict-free
constexpr int kDecaySlots = 80;                // γ^t for t = 0..64, padded to 16 bytes
constexpr int kMaxTiles = kMaxAttentionValueDim / kTD;
static_assert(kT == 64 && kTD == 32 && kThreads == 256, "the warp roles below assume these sizes");
static_assert(kT * kTD / 8 == kThreads, "one 16-byte V copy per thread");

// Byte offsets into the dynamic shared memory, each a multiple of 16. The two
// buffers of Q, K̃ and V follow each other (buffer b at offset + b · bytes).
struct TcLayout {
  int f16;       // F rounded up to a multiple of 16 (padding columns of Q, K̃ and rows of P are zero)
  int ld_qk;     // floats per row of the Q and K̃ tiles: f16 + 4 ≡ 4 or 20 mod 32, fragment loads conflict-free
  int qk_bytes;  // one Q or K̃ buffer
  int q;         // 2 × [kT, ld_qk] fp32
  int k;         // 2 × [kT, ld_qk] fp32
  int v;         // 2 × [kT, kLdV] bf16
  int ph;        // [f16, kLdP] fp32, tf32 high parts of the state tile
  int pl;        // [f16, kLdP] fp32, tf32 low parts
  int sw_hi;     // [kT, kLdSw] fp32: Sw[i][j] = γ^{i−j} q_i·k̃_j for j ≤ i < len, else 0 (tf32 high part)
  int sw_lo;     // [kT, kLdSw] fp32 (tf32 low part)
  int decay;     // [kDecaySlots] fp32
  int stats;     // [2 parities][2 column halves][kT] float2: per row, sum and squared deviations (read by the cluster)
  int total;
};

constexpr int kVBytes = kT * kLdV * 2;  // one V buffer

__host__ __device__ inline TcLayout MakeTcLayout(int f_dim) {
  TcLayout l{};
  l.f16 = (f_dim + 15) / 16 * 16;
  l.ld_qk = l.f16 + 4;
  l.qk_bytes = kT * l.ld_qk * 4;
  l.q = 0;
  l.k = l.q + 2 * l.qk_bytes;
  l.v = l.k + 2 * l.qk_bytes;
  l.ph = l.v + 2 * kVBytes;
  l.pl = l.ph + l.f16 * kLdP * 4;
  l.sw_hi = l.pl + l.f16 * kLdP * 4;
  l.sw_lo = l.sw_hi + kT * kLdSw * 4;
  l.decay = l.sw_lo + kT * kLdSw * 4;
  l.stats = l.decay + kDecaySlots * 4;
  l.total = l.stats + 2 * 2 * kT * 8;
  return l;
}

// Writes this warp's state rows (C-fragment layout) to the hi/lo mirrors.
__device__ __forceinline__ void StoreSplitState(const float (&p)[4][4], int f_row, int tig, float* __restrict__ ph,
                                                float* __restrict__ pl) {
#pragma unroll
  for (int t = 0; t < 4; ++t) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      uint32_t h0, l0, h1, l1;
      SplitTf32(p[t][2 * r], h0, l0);
      SplitTf32(p[t][2 * r + 1], h1, l1);
      const int e = (f_row + 8 * r) * kLdP + 8 * t + 2 * tig;
      *reinterpret_cast<float2*>(ph + e) = make_float2(__uint_as_float(h0), __uint_as_float(h1));
      *reinterpret_cast<float2*>(pl + e) = make_float2(__uint_as_float(l0), __uint_as_float(l1));
    }
  }
}

// Grid (tiles, H, chunks), cluster (tiles, 1, 1): block `rank` owns columns
// [32·rank, 32·rank + 32) of the head's state and output. One block per SM.
// kFixedF16: F rounded up to 16 known at compile time (128, Mistral-SUPRA's:
// the feature loops unroll and their addresses fold), or 0 for any F.
template <typename StateT, int kFixedF16>
__global__ void __launch_bounds__(kThreads, 1)
    ChunkedAttentionTcKernel(AttentionDims dims,
                             const float* __restrict__ q,          // [rows, H·F]
                             const float* __restrict__ k,          // [rows, Hk·F]
                             const __nv_bfloat16* __restrict__ v,  // [rows, v_stride]
                             int64_t v_stride,
                             const float* __restrict__ gammas,               // [H]
                             const AttentionChunkDesc* __restrict__ chunks,  // [chunks]
                             int rows, bool vec_qk, bool vec_v,
                             StatePoolLayer<StateT> pool,        // [slots, layers, H, F, Dv]
                             __nv_bfloat16* __restrict__ out) {  // [rows, H·Dv]
  extern __shared__ __align__(16) unsigned char smem[];
  const AttentionChunkDesc chunk = chunks[blockIdx.z];
  // The same chunk for every block of the cluster: all leave together.
  if (chunk.length <= 0 || chunk.row_begin < 0 || chunk.row_begin > rows - chunk.length || chunk.slot < 0 ||
      chunk.slot >= pool.slots) {
    return;
  }
  const int heads = dims.heads, f_dim = dims.features, dv = dims.value_dim;
  const TcLayout lay = MakeTcLayout(kFixedF16 > 0 ? kFixedF16 : f_dim);
  const int f16 = kFixedF16 > 0 ? kFixedF16 : lay.f16;
  auto q_s = [&](int buf) { return reinterpret_cast<float*>(smem + lay.q + buf * lay.qk_bytes); };
  auto k_s = [&](int buf) { return reinterpret_cast<float*>(smem + lay.k + buf * lay.qk_bytes); };
  auto v_s = [&](int buf) { return reinterpret_cast<__nv_bfloat16*>(smem + lay.v + buf * kVBytes); };
  float* ph = reinterpret_cast<float*>(smem + lay.ph);
  float* pl = reinterpret_cast<float*>(smem + lay.pl);
  float* sw_hi = reinterpret_cast<float*>(smem + lay.sw_hi);
  float* sw_lo = reinterpret_cast<float*>(smem + lay.sw_lo);
  float* decay = reinterpret_cast<float*>(smem + lay.decay);
  float2* stats = reinterpret_cast<float2*>(smem + lay.stats);

  cg::cluster_group cluster = cg::this_cluster();
  const int rank = blockIdx.x, tiles = gridDim.x, head = blockIdx.y;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, tig = lane % 4;
  const int d0 = rank * kTD;
  const int ld = kFixedF16 > 0 ? kFixedF16 + 4 : lay.ld_qk;
  // Warp roles: rows [i_lo, i_lo + 16) of the scores and of O; score columns
  // [32·half, +32), O columns [16·half, +16); state rows [16·warp, +16).
  const int i_lo = 16 * static_cast<int>(kWarpRowBlocks >> (4 * warp) & 0xFu);
  const int half = static_cast<int>(kWarpHalves >> warp & 1u);
  const int f_row = 16 * warp + g;  // state rows f_row and f_row + 8
  const bool owns_state = 16 * warp < f16;

  const float gamma = gammas[head];
  if (tid <= kT) {
    decay[tid] = tid == 0 ? 1.0f : static_cast<float>(exp(static_cast<double>(tid) * log(static_cast<double>(gamma))));
  }
  if (vec_qk && f16 > f_dim) {  // padding columns, never written by the copies
    const int pad = f16 - f_dim;
    for (int e = tid; e < 4 * kT * pad; e += kThreads) {
      // The four buffers (Q 0, Q 1, K̃ 0, K̃ 1) follow each other.
      const int buf = e / (kT * pad), i = e % (kT * pad) / pad, f = f_dim + e % pad;
      q_s(buf)[i * ld + f] = 0.0f;
    }
  }
  StateT* state = pool.data + StateOffset(pool, chunk.slot, heads, head, f_dim, dv);  // [F, Dv]
  float p[4][4];  // state rows f_row (+8), columns 8t + 2·tig (+1): C-fragment layout
#pragma unroll
  for (int t = 0; t < 4; ++t) {
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int f = f_row + (c / 2) * 8, d = d0 + 8 * t + 2 * tig + c % 2;
      p[t][c] = owns_state && f < f_dim && d < dv ? ToFloat(state[static_cast<int64_t>(f) * dv + d]) : 0.0f;
    }
  }
  if (owns_state) StoreSplitState(p, f_row, tig, ph, pl);

  const int64_t ldq = static_cast<int64_t>(heads) * f_dim, ldk = static_cast<int64_t>(dims.key_heads) * f_dim;
  const int64_t ldo = static_cast<int64_t>(heads) * dv;
  const float* q_base = q + chunk.row_begin * ldq + static_cast<int64_t>(head) * f_dim;
  const float* k_base = k + chunk.row_begin * ldk + static_cast<int64_t>(head / (heads / dims.key_heads)) * f_dim;
  const __nv_bfloat16* v_base =
      v + chunk.row_begin * v_stride + static_cast<int64_t>(head / (heads / dims.value_heads)) * dv;
  __nv_bfloat16* out_base = out + chunk.row_begin * ldo + static_cast<int64_t>(head) * dv;
  const bool pair_out = dv % 2 == 0 && reinterpret_cast<uintptr_t>(out) % 4 == 0;

  auto load_sub_chunk = [&](int s0, int buf) {
    const int len = min(kT, chunk.length - s0);
    LoadQkTile<kThreads>(q_base + s0 * ldq, ldq, len, f_dim, lay.f16, lay.ld_qk, vec_qk, q_s(buf));
    LoadQkTile<kThreads>(k_base + s0 * ldk, ldk, len, f_dim, lay.f16, lay.ld_qk, vec_qk, k_s(buf));
    LoadVTile<kThreads>(v_base + s0 * v_stride, v_stride, len, d0, dv, kTD, kLdV, vec_v, v_s(buf));
    CpAsyncCommit();
  };
  load_sub_chunk(0, 0);

  for (int s0 = 0, it = 0; s0 < chunk.length; s0 += kT, ++it) {
    const int buf = it % 2, len = min(kT, chunk.length - s0);
    CpAsyncWaitAll();
    // This sub-chunk's tiles and the state mirrors are complete, and every
    // thread is done with the previous sub-chunk (its buffer is free).
    __syncthreads();
    if (s0 + kT < chunk.length) load_sub_chunk(s0 + kT, buf ^ 1);
    const float* qs = q_s(buf);
    const float* ks = k_s(buf);
    const uint16_t* vs = reinterpret_cast<const uint16_t*>(v_s(buf));
    const bool rows_here = i_lo < len;  // warp-uniform

    // 1. Scores S = Q·K̃ᵀ (rows i_lo.., columns 32·half + 8t..) and
    // O = Q·P (columns 16·half + 8t..), sharing the Q fragments.
    float o[2][4] = {};
    if (rows_here) {
      float s[4][4] = {};
#pragma unroll 4
      for (int f0 = 0; f0 < f16; f0 += 8) {
        uint32_t ah[4], al[4];
        SplitTf32(qs[(i_lo + g) * ld + f0 + tig], ah[0], al[0]);
        SplitTf32(qs[(i_lo + g + 8) * ld + f0 + tig], ah[1], al[1]);
        SplitTf32(qs[(i_lo + g) * ld + f0 + tig + 4], ah[2], al[2]);
        SplitTf32(qs[(i_lo + g + 8) * ld + f0 + tig + 4], ah[3], al[3]);
#pragma unroll
        for (int t = 0; t < 4; ++t) {
          const int j0 = 32 * half + 8 * t;
          if (j0 <= i_lo + 15) {  // tiles wholly above the diagonal are masked out
            uint32_t bh0, bl0, bh1, bl1;
            SplitTf32(ks[(j0 + g) * ld + f0 + tig], bh0, bl0);
            SplitTf32(ks[(j0 + g) * ld + f0 + tig + 4], bh1, bl1);
            Mma3(s[t], ah, al, bh0, bh1, bl0, bl1);
          }
        }
#pragma unroll
        for (int t = 0; t < 2; ++t) {
          const int e0 = (f0 + tig) * kLdP + 16 * half + 8 * t + g, e1 = e0 + 4 * kLdP;
          Mma3(o[t], ah, al, __float_as_uint(ph[e0]), __float_as_uint(ph[e1]), __float_as_uint(pl[e0]),
               __float_as_uint(pl[e1]));
        }
      }
      // Sw = mask ⊙ γ^{i−j} S, split for the A operand of Sw·V.
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const int j0 = 32 * half + 8 * t;
        if (j0 <= i_lo + 15) {
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int i = i_lo + g + 8 * r, j = j0 + 2 * tig;
            uint32_t h[2], l[2];
#pragma unroll
            for (int c = 0; c < 2; ++c) {
              const float x = j + c <= i && i < len ? s[t][2 * r + c] * decay[max(i - j - c, 0)] : 0.0f;
              SplitTf32(x, h[c], l[c]);
            }
            *reinterpret_cast<float2*>(sw_hi + i * kLdSw + j) =
                make_float2(__uint_as_float(h[0]), __uint_as_float(h[1]));
            *reinterpret_cast<float2*>(sw_lo + i * kLdSw + j) =
                make_float2(__uint_as_float(l[0]), __uint_as_float(l[1]));
          }
        }
      }
      // The carried state's part decays by γ^i.
#pragma unroll
      for (int t = 0; t < 2; ++t) {
#pragma unroll
        for (int c = 0; c < 4; ++c) o[t][c] *= decay[i_lo + g + (c / 2) * 8];
      }
    }
    __syncthreads();  // Sw complete; every read of the state mirrors is done

    // 2. O += Sw·V over j < min(i_lo + 16, len) (Sw is zero above the diagonal).
    if (rows_here) {
      const int j_end = min(i_lo + 16, len);
      for (int j0 = 0; j0 < j_end; j0 += 8) {
        uint32_t ah[4], al[4];
        const int a0 = (i_lo + g) * kLdSw + j0 + tig;
        const int a_off[4] = {a0, a0 + 8 * kLdSw, a0 + 4, a0 + 8 * kLdSw + 4};
#pragma unroll
        for (int m = 0; m < 4; ++m) ah[m] = __float_as_uint(sw_hi[a_off[m]]), al[m] = __float_as_uint(sw_lo[a_off[m]]);
#pragma unroll
        for (int t = 0; t < 2; ++t) {
          const int e0 = (j0 + tig) * kLdV + 16 * half + 8 * t + g;
          Mma2(o[t], ah, al, Bf16Bits(vs[e0]), Bf16Bits(vs[e0 + 4 * kLdV]));
        }
      }
    }

    // 3. GroupNorm statistics of this warp's 16 columns: the sum and the
    // squared deviations from their own mean (combined over the cluster
    // below, Chan et al.), in the buffer of this sub-chunk's parity.
    {
      const int col0 = d0 + 16 * half;
      const int n_here = max(0, min(16, dv - col0));
      float2* st = stats + (it % 2) * 2 * kT + half * kT;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float sum = 0.0f;
#pragma unroll
        for (int t = 0; t < 2; ++t) {
#pragma unroll
          for (int c = 0; c < 2; ++c) sum += col0 + 8 * t + 2 * tig + c < dv ? o[t][2 * r + c] : 0.0f;
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const float mean_here = n_here > 0 ? sum / static_cast<float>(n_here) : 0.0f;
        float m2 = 0.0f;
#pragma unroll
        for (int t = 0; t < 2; ++t) {
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            const float dev = o[t][2 * r + c] - mean_here;
            m2 += col0 + 8 * t + 2 * tig + c < dv ? dev * dev : 0.0f;
          }
        }
        m2 += __shfl_xor_sync(0xffffffffu, m2, 1);
        m2 += __shfl_xor_sync(0xffffffffu, m2, 2);
        if (tig == 0) st[i_lo + g + 8 * r] = make_float2(sum, m2);
      }
    }
    ClusterArrive();  // statistics published

    // 4. While the cluster catches up: P ← γ^len P + Σ_j (γ^{len−j} k̃_j)ᵀ v_j
    // for this warp's 16 state rows (rows j >= len of K̃ and V are zero).
    if (owns_state) {
      float u[4][4] = {};
      for (int j0 = 0; j0 < len; j0 += 8) {
        const float w0 = decay[max(len - j0 - tig, 0)], w1 = decay[max(len - j0 - tig - 4, 0)];
        const int k0 = (j0 + tig) * ld + 16 * warp + g, k1 = k0 + 4 * ld;
        uint32_t ah[4], al[4];
        SplitTf32(w0 * ks[k0], ah[0], al[0]);
        SplitTf32(w0 * ks[k0 + 8], ah[1], al[1]);
        SplitTf32(w1 * ks[k1], ah[2], al[2]);
        SplitTf32(w1 * ks[k1 + 8], ah[3], al[3]);
#pragma unroll
        for (int t = 0; t < 4; ++t) {
          const int e0 = (j0 + tig) * kLdV + 8 * t + g;
          Mma2(u[t], ah, al, Bf16Bits(vs[e0]), Bf16Bits(vs[e0 + 4 * kLdV]));
        }
      }
      const float g_len = decay[len];
#pragma unroll
      for (int t = 0; t < 4; ++t) {
#pragma unroll
        for (int c = 0; c < 4; ++c) p[t][c] = fmaf(g_len, p[t][c], u[t][c]);
      }
      StoreSplitState(p, f_row, tig, ph, pl);  // read after the next sub-chunk's first barrier
    }
    ClusterWait();

    // 5. Combine the statistics and write the normalised rows.
    if (rows_here) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int i = i_lo + g + 8 * r;
        float2 part[kMaxTiles][2];
#pragma unroll
        for (int b = 0; b < kMaxTiles; ++b) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            part[b][h] =
                b < tiles ? cluster.map_shared_rank(stats, b)[(it % 2) * 2 * kT + h * kT + i] : make_float2(0.0f, 0.0f);
          }
        }
        float total = 0.0f;
#pragma unroll
        for (int b = 0; b < kMaxTiles; ++b) total += part[b][0].x + part[b][1].x;
        const float mean = total / static_cast<float>(dv);
        float m2 = 0.0f;
#pragma unroll
        for (int b = 0; b < kMaxTiles; ++b) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int n_bh = max(0, min(16, dv - b * kTD - 16 * h));
            if (b < tiles && n_bh > 0) {
              const float dev = part[b][h].x / static_cast<float>(n_bh) - mean;
              m2 += part[b][h].y + static_cast<float>(n_bh) * dev * dev;
            }
          }
        }
        const float inv_std = 1.0f / sqrtf(m2 / static_cast<float>(dv) + kGroupNormEps);
        if (i < len) {
          __nv_bfloat16* o_row = out_base + (s0 + i) * ldo;
#pragma unroll
          for (int t = 0; t < 2; ++t) {
            const int d = d0 + 16 * half + 8 * t + 2 * tig;
            const float x0 = (o[t][2 * r] - mean) * inv_std, x1 = (o[t][2 * r + 1] - mean) * inv_std;
            if (pair_out && d + 1 < dv) {
              *reinterpret_cast<__nv_bfloat162*>(o_row + d) = __floats2bfloat162_rn(x0, x1);
            } else {
              if (d < dv) o_row[d] = __float2bfloat16_rn(x0);
              if (d + 1 < dv) o_row[d + 1] = __float2bfloat16_rn(x1);
            }
          }
        }
      }
    }
  }

  if (owns_state) {
#pragma unroll
    for (int t = 0; t < 4; ++t) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int f = f_row + (c / 2) * 8, d = d0 + 8 * t + 2 * tig + c % 2;
        if (f < f_dim && d < dv) state[static_cast<int64_t>(f) * dv + d] = FromFloat<StateT>(p[t][c]);
      }
    }
  }
  // Keep the statistics alive until every block of the cluster has read them.
  cluster.sync();
}

template <typename StateT>
absl::Status LaunchTc(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                      int64_t v_stride, const float* gammas, const AttentionChunkDesc* chunks, int num_chunks, int rows,
                      const StatePoolLayer<StateT>& state, __nv_bfloat16* out, cudaStream_t stream) {
  const int tiles = (dims.value_dim + kTD - 1) / kTD;  // <= 8: a portable cluster
  const bool vec_qk = dims.features % 4 == 0 && Aligned16(q) && Aligned16(k);
  const bool vec_v = dims.value_dim % 8 == 0 && v_stride % 8 == 0 && Aligned16(v);
  const size_t smem_bytes = static_cast<size_t>(MakeTcLayout(dims.features).total);
  auto* kernel = (dims.features + 15) / 16 * 16 == 128 ? &ChunkedAttentionTcKernel<StateT, 128>
                                                       : &ChunkedAttentionTcKernel<StateT, 0>;
  CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem_bytes)));
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
      cudaLaunchKernelEx(&config, kernel, dims, q, k, v, v_stride, gammas, chunks, rows, vec_qk, vec_v, state, out));
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

}  // namespace

absl::Status LaunchChunkedAttentionTensorCore(const AttentionDims& dims, const float* q, const float* k,
                                              const __nv_bfloat16* v, int64_t v_stride, const float* gammas,
                                              const AttentionChunkDesc* chunks, int num_chunks, int rows,
                                              StatePoolLayer<float> state, __nv_bfloat16* out, cudaStream_t stream) {
  return LaunchTc(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state, out, stream);
}

absl::Status LaunchChunkedAttentionTensorCore(const AttentionDims& dims, const float* q, const float* k,
                                              const __nv_bfloat16* v, int64_t v_stride, const float* gammas,
                                              const AttentionChunkDesc* chunks, int num_chunks, int rows,
                                              StatePoolLayer<__nv_bfloat16> state, __nv_bfloat16* out,
                                              cudaStream_t stream) {
  return LaunchTc(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state, out, stream);
}

}  // namespace supra::cuda::attention_internal

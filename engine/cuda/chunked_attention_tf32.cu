// The chunked attention kernel on tensor cores with a 1xTF32 output path and
// a 3xTF32-accurate state update; the layout and the error analysis are in
// chunked_attention_tf32.h.
#include <cooperative_groups.h>

#include <cstdint>

#include "engine/cuda/attention_common.cuh"
#include "engine/cuda/chunked_attention_tf32.h"
#include "engine/cuda/cuda_status.h"

namespace supra::cuda::attention_internal {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 256;
constexpr int kT = kChunkedAttentionSubChunk;  // rows of one sub-chunk
constexpr int kTD = 32;                        // Dv columns per block
constexpr int kLdV = 40;                       // bf16 per V row: 20 words, B fragments conflict-free
constexpr int kLdP = 40;                       // floats per row of P: ≡ 8 mod 32, B fragments conflict-free
constexpr int kDecaySlots = 80;                // γ^t for t = 0..64, padded to 16 bytes
constexpr int kMaxTiles = kMaxAttentionValueDim / kTD;
static_assert(kT == 64 && kTD == 32 && kThreads == 256, "the warp roles below assume these sizes");
static_assert(kT * kTD / 8 == kThreads, "one 16-byte V copy per thread");

// Row block rb (rows [16·rb, +16)) and column half of O per warp, packed 4
// bits (rb) and 1 bit (half) per warp. Warps w and w + 4 share an SM
// sub-partition; the work of a role grows with rb (the diagonal's masked
// tiles are skipped), so each pair gets rb values summing to 3:
// w0..w7: rb 0 1 3 2 3 2 0 1, half 0 0 1 1 0 0 1 1.
constexpr uint32_t kWarpRowBlocks = 0x10232310u;
constexpr uint32_t kWarpHalves = 0xCCu;
constexpr bool WarpRolesAreABijection() {
  uint32_t seen = 0;
  for (int w = 0; w < 8; ++w) seen |= 1u << ((kWarpRowBlocks >> (4 * w) & 0xFu) * 2 + (kWarpHalves >> w & 1u));
  return seen == 0xFFu;
}
constexpr bool WarpPairsBalance() {
  for (int w = 0; w < 4; ++w) {
    if ((kWarpRowBlocks >> (4 * w) & 0xFu) + (kWarpRowBlocks >> (4 * (w + 4)) & 0xFu) != 3) return false;
  }
  return true;
}
static_assert(WarpRolesAreABijection(), "every (row block, half) role exactly once");
static_assert(WarpPairsBalance(), "warps sharing a sub-partition balance the triangular work");

// Byte offsets into the dynamic shared memory, each a multiple of 16.
struct Tf32Layout {
  int f16;    // F rounded up to a multiple of 16 (padding columns of Q, K̃ and rows of P are zero)
  int ld_qk;  // floats per row of the Q and K̃ tiles: f16 + 4 ≡ 4 or 20 mod 32, fragment loads conflict-free
  int q;      // [kT, ld_qk] fp32
  int k;      // [kT, ld_qk] fp32
  int v;      // [kT, kLdV] bf16
  int p;      // [f16, kLdP] fp32: the state tile rounded to tf32 (B operand of Q·P)
  int decay;  // [kDecaySlots] fp32
  int stats;  // [2 parities][2 column halves][kT] float2: per row, sum and squared deviations (read by the cluster)
  int total;
};

__host__ __device__ inline Tf32Layout MakeTf32Layout(int f_dim) {
  Tf32Layout l{};
  l.f16 = (f_dim + 15) / 16 * 16;
  l.ld_qk = l.f16 + 4;
  l.q = 0;
  l.k = l.q + kT * l.ld_qk * 4;
  l.v = l.k + kT * l.ld_qk * 4;
  l.p = l.v + kT * kLdV * 2;
  l.decay = l.p + l.f16 * kLdP * 4;
  l.stats = l.decay + kDecaySlots * 4;
  l.total = l.stats + 2 * 2 * kT * 8;
  return l;
}

// ---- tf32 ------------------------------------------------------------------

// x rounded to the nearest tf32 (ties away from zero), as fp32 bits.
__device__ __forceinline__ uint32_t ToTf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

// x = hi + lo + O(2^-22 |x|), both exact tf32 values.
__device__ __forceinline__ void SplitTf32(float x, uint32_t& hi, uint32_t& lo) {
  hi = ToTf32(x);
  lo = ToTf32(x - __uint_as_float(hi));  // the difference is exact in fp32
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

// ---- tile loads --------------------------------------------------------------

// dst[i][f] = src[i][f] for i < len, f < F, zero for i >= len. Vector path
// (F % 4 == 0, 16-byte aligned rows): asynchronous copies, leaving the
// padding columns [F, f16) as they are (zeroed once by the kernel).
// Otherwise plain loads, writing zeros to the padding columns.
__device__ __forceinline__ void LoadQkTile(const float* __restrict__ src,  // [len, ld]
                                           int64_t ld, int len, int f_dim, int f16, int ld_qk, bool vec,
                                           float* __restrict__ dst) {  // [kT, ld_qk]
  if (vec) {
    const int f4s = f_dim / 4;
    for (int u = threadIdx.x; u < kT * f4s; u += kThreads) {
      const int i = u / f4s, f = u % f4s * 4;
      const bool valid = i < len;
      CpAsync16(dst + i * ld_qk + f, valid ? src + i * ld + f : src, valid);
    }
  } else {
    for (int u = threadIdx.x; u < kT * f16; u += kThreads) {
      const int i = u / f16, f = u % f16;
      dst[i * ld_qk + f] = i < len && f < f_dim ? __ldg(src + i * ld + f) : 0.0f;
    }
  }
}

// The block's V tile dst[j][c] = v[j][d0 + c], zero for j >= len or
// d0 + c >= Dv. Vector path: Dv % 8 == 0 and 16-byte aligned rows.
__device__ __forceinline__ void LoadVTile(const __nv_bfloat16* __restrict__ v_rows,  // [len, v_stride]
                                          int64_t v_stride, int len, int d0, int dv, bool vec,
                                          __nv_bfloat16* __restrict__ dst) {  // [kT, kLdV]
  if (vec) {
    const int j = threadIdx.x / 4, c = threadIdx.x % 4 * 8;
    const bool valid = j < len && d0 + c < dv;
    CpAsync16(dst + j * kLdV + c, valid ? v_rows + j * v_stride + d0 + c : v_rows, valid);
  } else {
    for (int e = threadIdx.x; e < kT * kTD; e += kThreads) {
      const int j = e / kTD, c = e % kTD;
      dst[j * kLdV + c] = j < len && d0 + c < dv ? v_rows[j * v_stride + d0 + c] : __float2bfloat16_rn(0.0f);
    }
  }
}

// Writes this warp's state rows (C-fragment layout) to the tf32 mirror.
__device__ __forceinline__ void StoreStateTf32(const float (&p)[4][4], int f_row, int tig, float* __restrict__ ps) {
#pragma unroll
  for (int t = 0; t < 4; ++t) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      *reinterpret_cast<float2*>(ps + (f_row + 8 * r) * kLdP + 8 * t + 2 * tig) =
          make_float2(__uint_as_float(ToTf32(p[t][2 * r])), __uint_as_float(ToTf32(p[t][2 * r + 1])));
    }
  }
}

// Grid (tiles, H, chunks), cluster (tiles, 1, 1): block `rank` owns columns
// [32·rank, 32·rank + 32) of the head's state and output. Two blocks per SM.
// (A specialisation for F = 128 gains nothing here, the feature loops being
// rolled to stay within 128 registers, and spilled a few bytes.)
template <typename StateT>
__global__ void __launch_bounds__(kThreads, 2)
    ChunkedAttentionTf32Kernel(AttentionDims dims,
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
  const Tf32Layout lay = MakeTf32Layout(f_dim);
  const int f16 = lay.f16, ld = lay.ld_qk;
  float* qs = reinterpret_cast<float*>(smem + lay.q);
  float* ks = reinterpret_cast<float*>(smem + lay.k);
  __nv_bfloat16* vt = reinterpret_cast<__nv_bfloat16*>(smem + lay.v);
  const uint16_t* vs = reinterpret_cast<const uint16_t*>(vt);
  float* ps = reinterpret_cast<float*>(smem + lay.p);
  float* decay = reinterpret_cast<float*>(smem + lay.decay);
  float2* stats = reinterpret_cast<float2*>(smem + lay.stats);

  cg::cluster_group cluster = cg::this_cluster();
  const int rank = blockIdx.x, tiles = gridDim.x, head = blockIdx.y;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, tig = lane % 4;
  const int d0 = rank * kTD;
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
    for (int e = tid; e < 2 * kT * pad; e += kThreads) {
      // Q's rows then K̃'s (K̃ follows Q directly).
      const int r = e / pad, f = f_dim + e % pad;
      qs[r * ld + f] = 0.0f;
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
  if (owns_state) StoreStateTf32(p, f_row, tig, ps);

  const int64_t ldq = static_cast<int64_t>(heads) * f_dim, ldk = static_cast<int64_t>(dims.key_heads) * f_dim;
  const int64_t ldo = static_cast<int64_t>(heads) * dv;
  const float* q_base = q + chunk.row_begin * ldq + static_cast<int64_t>(head) * f_dim;
  const float* k_base = k + chunk.row_begin * ldk + static_cast<int64_t>(head / (heads / dims.key_heads)) * f_dim;
  const __nv_bfloat16* v_base =
      v + chunk.row_begin * v_stride + static_cast<int64_t>(head / (heads / dims.value_heads)) * dv;
  __nv_bfloat16* out_base = out + chunk.row_begin * ldo + static_cast<int64_t>(head) * dv;
  const bool pair_out = dv % 2 == 0 && reinterpret_cast<uintptr_t>(out) % 4 == 0;

  auto load_sub_chunk = [&](int s0) {
    const int len = min(kT, chunk.length - s0);
    LoadQkTile(q_base + s0 * ldq, ldq, len, f_dim, f16, ld, vec_qk, qs);
    LoadQkTile(k_base + s0 * ldk, ldk, len, f_dim, f16, ld, vec_qk, ks);
    LoadVTile(v_base + s0 * v_stride, v_stride, len, d0, dv, vec_v, vt);
    CpAsyncCommit();
  };
  load_sub_chunk(0);

  for (int s0 = 0, it = 0; s0 < chunk.length; s0 += kT, ++it) {
    const int len = min(kT, chunk.length - s0);
    CpAsyncWaitAll();
    // This sub-chunk's tiles, the state mirror and (first time) the decay
    // table and padding are complete and visible to every thread.
    __syncthreads();
    const bool rows_here = i_lo < len;  // warp-uniform

    // 1. S = Q·K̃ᵀ for rows [i_lo, +16) and the column tiles j0 = 8t with
    // j0 <= i_lo + 15 and j0 < len (others are masked out entirely), in two
    // passes of four tiles (j < 32, then j >= 32, which only row blocks 2
    // and 3 have) to stay within 128 registers; with the first pass,
    // O = Q·P for columns 16·half + 8t2.., sharing the Q fragments.
    float o[2][4] = {};
    if (rows_here) {
#pragma unroll
      for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1 && (i_lo + 15 < 32 || len <= 32)) break;  // warp-uniform
        float s[4][4] = {};
#pragma unroll 1
        for (int f0 = 0; f0 < f16; f0 += 8) {
          uint32_t a[4];
          a[0] = ToTf32(qs[(i_lo + g) * ld + f0 + tig]);
          a[1] = ToTf32(qs[(i_lo + g + 8) * ld + f0 + tig]);
          a[2] = ToTf32(qs[(i_lo + g) * ld + f0 + tig + 4]);
          a[3] = ToTf32(qs[(i_lo + g + 8) * ld + f0 + tig + 4]);
#pragma unroll
          for (int t = 0; t < 4; ++t) {
            const int j0 = 32 * pass + 8 * t;
            if (j0 <= i_lo + 15 && j0 < len) {
              Mma(s[t], a, ToTf32(ks[(j0 + g) * ld + f0 + tig]), ToTf32(ks[(j0 + g) * ld + f0 + tig + 4]));
            }
          }
          if (pass == 0) {
#pragma unroll
            for (int t2 = 0; t2 < 2; ++t2) {
              const int e0 = (f0 + tig) * kLdP + 16 * half + 8 * t2 + g;
              Mma(o[t2], a, __float_as_uint(ps[e0]), __float_as_uint(ps[e0 + 4 * kLdP]));
            }
          }
        }
        if (pass == 0) {
          // The carried state's part decays by γ^i (before any Sw·V term).
#pragma unroll
          for (int t2 = 0; t2 < 2; ++t2) {
#pragma unroll
            for (int c = 0; c < 4; ++c) o[t2][c] *= decay[i_lo + g + (c / 2) * 8];
          }
        }

        // 2. O += (M ⊙ γ^{i−j} S)·V over this pass's tiles. The accumulator
        // of tile t holds (i = i_lo + g (+8), j = j0 + 2·tig (+1)); as an A
        // operand it is read with k index tig ↔ j0 + 2·tig and
        // tig + 4 ↔ j0 + 2·tig + 1, and V's rows are read in the same order.
#pragma unroll
        for (int t = 0; t < 4; ++t) {
          const int j0 = 32 * pass + 8 * t;
          if (j0 <= i_lo + 15 && j0 < len) {
            float w[4];
#pragma unroll
            for (int c = 0; c < 4; ++c) {
              const int i = i_lo + g + (c / 2) * 8, j = j0 + 2 * tig + c % 2;
              w[c] = j <= i && i < len ? s[t][c] * decay[max(i - j, 0)] : 0.0f;
            }
            const uint32_t a[4] = {ToTf32(w[0]), ToTf32(w[2]), ToTf32(w[1]), ToTf32(w[3])};
#pragma unroll
            for (int t2 = 0; t2 < 2; ++t2) {
              const int e0 = (j0 + 2 * tig) * kLdV + 16 * half + 8 * t2 + g;
              Mma(o[t2], a, Bf16Bits(vs[e0]), Bf16Bits(vs[e0 + kLdV]));
            }
          }
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
    // for this warp's 16 state rows (rows j >= len of K̃ and V are zero), with
    // K̃ split hi/lo (V is exact in tf32).
    if (owns_state) {
      float u[4][4] = {};
#pragma unroll 1
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
          const uint32_t b0 = Bf16Bits(vs[e0]), b1 = Bf16Bits(vs[e0 + 4 * kLdV]);
          Mma(u[t], al, b0, b1);  // the small term first
          Mma(u[t], ah, b0, b1);
        }
      }
      const float g_len = decay[len];
#pragma unroll
      for (int t = 0; t < 4; ++t) {
#pragma unroll
        for (int c = 0; c < 4; ++c) p[t][c] = fmaf(g_len, p[t][c], u[t][c]);
      }
    }
    // Every read of this sub-chunk's tiles and of the state mirror is done:
    // the mirror takes the new state and the tiles the next sub-chunk.
    __syncthreads();
    if (owns_state) StoreStateTf32(p, f_row, tig, ps);
    if (s0 + kT < chunk.length) load_sub_chunk(s0 + kT);
    ClusterWait();

    // 5. Combine the statistics and write the normalised rows.
    if (rows_here) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int i = i_lo + g + 8 * r;
        // Two passes over the cluster's statistics (the sums, then the
        // deviations around the row mean) instead of holding all 16 pairs:
        // it keeps the kernel within 128 registers.
        const int e = (it % 2) * 2 * kT + i;
        float total = 0.0f;
#pragma unroll
        for (int b = 0; b < kMaxTiles; ++b) {
          if (b < tiles) {
            const float2* remote = cluster.map_shared_rank(stats, b) + e;
            total += remote[0].x + remote[kT].x;
          }
        }
        const float mean = total / static_cast<float>(dv);
        float m2 = 0.0f;
#pragma unroll
        for (int b = 0; b < kMaxTiles; ++b) {
          if (b < tiles) {
            const float2* remote = cluster.map_shared_rank(stats, b) + e;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const int n_bh = max(0, min(16, dv - b * kTD - 16 * h));
              if (n_bh > 0) {
                const float2 part = remote[h * kT];
                const float dev = part.x / static_cast<float>(n_bh) - mean;
                m2 += part.y + static_cast<float>(n_bh) * dev * dev;
              }
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

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename StateT>
absl::Status LaunchTf32(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                        int64_t v_stride, const float* gammas, const AttentionChunkDesc* chunks, int num_chunks,
                        int rows, const StatePoolLayer<StateT>& state, __nv_bfloat16* out, cudaStream_t stream) {
  const int tiles = (dims.value_dim + kTD - 1) / kTD;  // <= 8: a portable cluster
  const bool vec_qk = dims.features % 4 == 0 && Aligned16(q) && Aligned16(k);
  const bool vec_v = dims.value_dim % 8 == 0 && v_stride % 8 == 0 && Aligned16(v);
  const size_t smem_bytes = static_cast<size_t>(MakeTf32Layout(dims.features).total);
  auto* kernel = &ChunkedAttentionTf32Kernel<StateT>;
  CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem_bytes)));
  // Two blocks per SM need the largest shared-memory carveout.
  CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
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

absl::Status LaunchChunkedAttentionTf32(const AttentionDims& dims, const float* q, const float* k,
                                        const __nv_bfloat16* v, int64_t v_stride, const float* gammas,
                                        const AttentionChunkDesc* chunks, int num_chunks, int rows,
                                        StatePoolLayer<float> state, __nv_bfloat16* out, cudaStream_t stream) {
  return LaunchTf32(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state, out, stream);
}

absl::Status LaunchChunkedAttentionTf32(const AttentionDims& dims, const float* q, const float* k,
                                        const __nv_bfloat16* v, int64_t v_stride, const float* gammas,
                                        const AttentionChunkDesc* chunks, int num_chunks, int rows,
                                        StatePoolLayer<__nv_bfloat16> state, __nv_bfloat16* out,
                                        cudaStream_t stream) {
  return LaunchTf32(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state, out, stream);
}

}  // namespace supra::cuda::attention_internal

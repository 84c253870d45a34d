// Pass 2 of the two-pass chunked attention: the outputs of every sub-chunk
// from the state entering it (written by pass 1), fully parallel. Layout,
// budgets and accuracy in chunked_attention_two_pass.h.
#include <cstdint>

#include "engine/cuda/attention_common.cuh"
#include "engine/cuda/chunked_attention_mma.cuh"
#include "engine/cuda/chunked_attention_two_pass.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_limits.h"
#include "engine/util/status_macros.h"

namespace supra::cuda::attention_internal {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kT = kChunkedAttentionSubChunk;  // rows of one sub-chunk
constexpr int kMTiles = kT / 16;               // 16-row mma tiles of a sub-chunk
constexpr int kLdSw = kT + 4;                  // floats per row of Sw hi/lo: ≡ 4 mod 32, A fragments conflict-free
constexpr int kDecaySlots = 80;                // γ^t for t = 0..64, padded to 16 bytes
constexpr int kPRows = 16;                     // rows of P_s per ring slot (two 8-feature mma steps)
constexpr int kPSlots = 3;                     // ring slots of P_s: two slices in flight while one is used
static_assert(kT == 64 && kThreads == 256, "the warp roles below assume these sizes");
static_assert(kWarps * kT * 8 <= kT * (16 + 4) * 4, "the statistics fit in Q's bytes at the smallest F");

// Byte offsets into the dynamic shared memory, each a multiple of 16. K̃ is
// dead once the scores are in registers: Sw hi/lo take its place. P_s
// streams through a ring of kPSlots slices of kPRows rows. Q is dead after
// Q·P_s: the GroupNorm statistics take its place.
struct OutputsLayout {
  int f16;    // F rounded up to 16 (padding columns of Q, K̃ and rows of P are zero)
  int ld_qk;  // floats per row of Q and K̃: f16 + 4 ≡ 4 or 20 mod 32, fragment loads conflict-free
  int dv8;    // Dv rounded up to 8: the columns of O computed (padding columns of V and P are zero)
  int ldv;    // bf16 per row of V: dv8 + 8, an odd multiple of 4 words, B fragments conflict-free
  int ldp;    // floats per row of P: ≡ 8 mod 32, B fragments conflict-free
  int q;      // [kT, ld_qk] fp32
  int k;      // [kT, ld_qk] fp32, directly after Q; then Sw hi/lo in the same bytes
  int sw_hi;  // [kT, kLdSw] fp32: Sw[i][j] = γ^{i−j} q_i·k̃_j for j ≤ i < len, else 0 (tf32 high part)
  int sw_lo;  // [kT, kLdSw] fp32 (tf32 low part)
  int v;      // [kT, ldv] bf16
  int p;      // kPSlots × [kPRows, ldp] fp32: rows [16s, +16) of the state entering the sub-chunk
  int p_slot_bytes;
  int decay;  // [kDecaySlots] fp32
  int stats;  // [kWarps, kT] float2 over Q: per warp and row, sum and squared deviations over the warp's columns
  int total;
};

__host__ __device__ inline OutputsLayout MakeOutputsLayout(int f_dim, int dv) {
  OutputsLayout l{};
  l.f16 = (f_dim + 15) / 16 * 16;
  l.ld_qk = l.f16 + 4;
  l.dv8 = (dv + 7) / 8 * 8;
  l.ldv = l.dv8 + 8;
  l.ldp = (dv + 31) / 32 * 32 + 8;
  l.q = 0;
  l.k = l.q + kT * l.ld_qk * 4;
  l.sw_hi = l.k;
  l.sw_lo = l.sw_hi + kT * kLdSw * 4;
  const int k_or_sw = kT * l.ld_qk * 4 > 2 * kT * kLdSw * 4 ? kT * l.ld_qk * 4 : 2 * kT * kLdSw * 4;
  l.v = l.k + k_or_sw;
  l.p = l.v + kT * l.ldv * 2;
  l.p_slot_bytes = kPRows * l.ldp * 4;
  l.decay = l.p + kPSlots * l.p_slot_bytes;
  l.stats = l.q;  // kWarps · kT · 8 bytes <= kT · ld_qk · 4
  l.total = l.decay + kDecaySlots * 4;
  return l;
}

// Columns of O warp `w` owns (its 8-column tiles w, w + 8, ..., below Dv).
__device__ __forceinline__ int WarpColumns(int w, int dv, int n_tiles, int nt_per_warp) {
  int n = 0;
  for (int u = 0; u < nt_per_warp; ++u) {
    const int nt = w + kWarps * u;
    if (nt < n_tiles) n += max(0, min(8, dv - 8 * nt));
  }
  return n;
}

// Grid (sub-chunks of the launch, H). kNt: 8-column tiles of O per warp (2
// for Dv <= 128, 4 for Dv <= 256). kFixedF16: F rounded up to 16 known at
// compile time (128, Mistral-SUPRA's), or 0 for any F. Two blocks per SM for
// Dv <= 128 (shared memory and registers sized for it), one for wider V.
template <int kNt, int kFixedF16>
__global__ void __launch_bounds__(kThreads, kNt == 2 ? 2 : 1)
    ChunkedAttentionOutputsKernel(AttentionDims dims,
                                  const float* __restrict__ q,          // [rows, H·F]
                                  const float* __restrict__ k,          // [rows, Hk·F]
                                  const __nv_bfloat16* __restrict__ v,  // [rows, v_stride]
                                  int64_t v_stride,
                                  const float* __restrict__ gammas,               // [H]
                                  const AttentionChunkDesc* __restrict__ chunks,  // [num_chunks]
                                  int num_chunks, int rows, int slots,
                                  const int32_t* __restrict__ first_sub_chunk,  // [chunks]
                                  const int32_t* __restrict__ sub_chunk_chunk,  // [sub-chunks]
                                  const float* __restrict__ sub_chunk_states,   // [sub-chunks, H, F16, Dv8]
                                  bool vec_qk, bool vec_v,
                                  __nv_bfloat16* __restrict__ out) {  // [rows, H·Dv]
  extern __shared__ __align__(16) unsigned char smem[];
  const int sub = blockIdx.x, head = blockIdx.y;
  const int c = sub_chunk_chunk[sub];
  if (c < 0 || c >= num_chunks) return;  // (never, with a valid index)
  const AttentionChunkDesc chunk = chunks[c];
  const int s0 = (sub - first_sub_chunk[c]) * kT;
  if (SubChunksOf(chunk, rows, slots) == 0 || s0 < 0 || s0 >= chunk.length) return;  // (never, with a valid index)
  const int len = min(kT, chunk.length - s0);

  const int heads = dims.heads, f_dim = dims.features, dv = dims.value_dim;
  const OutputsLayout lay = MakeOutputsLayout(kFixedF16 > 0 ? kFixedF16 : f_dim, dv);
  const int f16 = kFixedF16 > 0 ? kFixedF16 : lay.f16;
  const int ld = kFixedF16 > 0 ? kFixedF16 + 4 : lay.ld_qk;
  const int ldp = lay.ldp, ldv = lay.ldv, n_tiles = lay.dv8 / 8;
  float* qs = reinterpret_cast<float*>(smem + lay.q);
  float* ks = reinterpret_cast<float*>(smem + lay.k);
  __nv_bfloat16* vs_b = reinterpret_cast<__nv_bfloat16*>(smem + lay.v);
  const uint16_t* vs = reinterpret_cast<const uint16_t*>(smem + lay.v);
  auto p_slot = [&](int slot) { return reinterpret_cast<float*>(smem + lay.p + slot * lay.p_slot_bytes); };
  float* sw_hi = reinterpret_cast<float*>(smem + lay.sw_hi);
  float* sw_lo = reinterpret_cast<float*>(smem + lay.sw_lo);
  float* decay = reinterpret_cast<float*>(smem + lay.decay);
  float2* stats = reinterpret_cast<float2*>(smem + lay.stats);

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, tig = lane % 4;

  // Stage Q, K̃ (group 0, for the scores), V (group 1) and the first two
  // slices of P_s (groups 2 and 3), the last three in flight while the
  // scores are computed.
  const int64_t ldq = static_cast<int64_t>(heads) * f_dim, ldk = static_cast<int64_t>(dims.key_heads) * f_dim;
  const int64_t row0 = static_cast<int64_t>(chunk.row_begin) + s0;
  LoadQkTile<kThreads>(q + row0 * ldq + static_cast<int64_t>(head) * f_dim, ldq, len, f_dim, f16, ld, vec_qk, qs);
  LoadQkTile<kThreads>(k + row0 * ldk + static_cast<int64_t>(head / (heads / dims.key_heads)) * f_dim, ldk, len, f_dim,
                       f16, ld, vec_qk, ks);
  CpAsyncCommit();
  LoadVTile<kThreads>(v + row0 * v_stride + static_cast<int64_t>(head / (heads / dims.value_heads)) * dv, v_stride, len,
                      0, dv, lay.dv8, ldv, vec_v, vs_b);
  CpAsyncCommit();
  // Rows [kPRows·slice, +kPRows) of P_s into ring slot slice % kPSlots, one
  // cp.async group (the workspace rows are dv8 floats, 32-byte aligned).
  const float* p_src = sub_chunk_states + (static_cast<int64_t>(sub) * heads + head) * f16 * lay.dv8;
  auto load_p_slice = [&](int slice) {
    float* dst = p_slot(slice % kPSlots);
    const float* src = p_src + static_cast<int64_t>(slice) * kPRows * lay.dv8;
    const int p4s = lay.dv8 / 4;
    for (int u = tid; u < kPRows * p4s; u += kThreads) {
      const int f = u / p4s, d = u % p4s * 4;
      CpAsync16(dst + f * ldp + d, src + f * lay.dv8 + d, true);
    }
    CpAsyncCommit();
  };
  const int p_slices = f16 / kPRows;
  load_p_slice(0);
  if (p_slices > 1) load_p_slice(1);
  if (vec_qk && f16 > f_dim) {  // padding columns, never written by the copies
    const int pad = f16 - f_dim;
    for (int e = tid; e < 2 * kT * pad; e += kThreads) {
      const int i = e / pad, f = f_dim + e % pad;  // rows 0..63 of Q, then of K̃ (kT · ld floats further)
      qs[(i / kT) * kT * ld + (i % kT) * ld + f] = 0.0f;
    }
  }
  const float gamma = gammas[head];
  if (tid <= kT) {
    decay[tid] = tid == 0 ? 1.0f : static_cast<float>(exp(static_cast<double>(tid) * log(static_cast<double>(gamma))));
  }
  if (p_slices > 1) {
    CpAsyncWaitPending<3>();
  } else {
    CpAsyncWaitPending<2>();
  }
  __syncthreads();  // Q, K̃, their padding and the decay table complete

  // 1. Scores: warp role (rows [i_lo, +16), columns [32·half, +32)), tiles
  // wholly above the diagonal or past the sub-chunk skipped (never read).
  // Sw overwrites K̃: every warp's scores are in registers first.
  {
    const int i_lo = 16 * static_cast<int>(kWarpRowBlocks >> (4 * warp) & 0xFu);
    const int half = static_cast<int>(kWarpHalves >> warp & 1u);
    float s[4][4] = {};
    if (i_lo < len) {
#pragma unroll 2
      for (int f0 = 0; f0 < f16; f0 += 8) {
        uint32_t ah[4], al[4];
        SplitTf32(qs[(i_lo + g) * ld + f0 + tig], ah[0], al[0]);
        SplitTf32(qs[(i_lo + g + 8) * ld + f0 + tig], ah[1], al[1]);
        SplitTf32(qs[(i_lo + g) * ld + f0 + tig + 4], ah[2], al[2]);
        SplitTf32(qs[(i_lo + g + 8) * ld + f0 + tig + 4], ah[3], al[3]);
#pragma unroll
        for (int t = 0; t < 4; ++t) {
          const int j0 = 32 * half + 8 * t;
          if (j0 <= i_lo + 15 && j0 < len) {
            uint32_t bh0, bl0, bh1, bl1;
            SplitTf32(ks[(j0 + g) * ld + f0 + tig], bh0, bl0);
            SplitTf32(ks[(j0 + g) * ld + f0 + tig + 4], bh1, bl1);
            Mma3(s[t], ah, al, bh0, bh1, bl0, bl1);
          }
        }
      }
    }
    __syncthreads();  // K̃ read by every warp: its bytes become Sw
    if (i_lo < len) {
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const int j0 = 32 * half + 8 * t;
        if (j0 <= i_lo + 15 && j0 < len) {
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int i = i_lo + g + 8 * r, j = j0 + 2 * tig;
            uint32_t h[2], l[2];
#pragma unroll
            for (int cc = 0; cc < 2; ++cc) {
              const float x = j + cc <= i && i < len ? s[t][2 * r + cc] * decay[max(i - j - cc, 0)] : 0.0f;
              SplitTf32(x, h[cc], l[cc]);
            }
            *reinterpret_cast<float2*>(sw_hi + i * kLdSw + j) =
                make_float2(__uint_as_float(h[0]), __uint_as_float(h[1]));
            *reinterpret_cast<float2*>(sw_lo + i * kLdSw + j) =
                make_float2(__uint_as_float(l[0]), __uint_as_float(l[1]));
          }
        }
      }
    }
  }

  // 2. O = diag(γ^i) Q·P_s: warp `warp` owns the 8-column tiles warp + 8u
  // (u < kNt) for the sub-chunk's 16-row tiles below len. P_s slice by
  // slice: slices s + 1 and s + 2 are in flight while slice s is used.
  const int m_tiles = (len + 15) / 16;
  float o[kMTiles][kNt][4] = {};
  for (int slice = 0; slice < p_slices; ++slice) {
    // This slice landed (the newest group, slice + 1's, may be pending;
    // V was committed before slice 0); every warp is done with slice − 1
    // (whose slot slice + 2 reuses) and, at slice 0, has written its part
    // of Sw.
    if (slice + 1 < p_slices) {
      CpAsyncWaitPending<1>();
    } else {
      CpAsyncWaitAll();
    }
    __syncthreads();
    if (slice + 2 < p_slices) load_p_slice(slice + 2);
    const float* ps = p_slot(slice % kPSlots);
#pragma unroll
    for (int fl = 0; fl < kPRows; fl += 8) {
      const int f0 = slice * kPRows + fl;
      uint32_t ah[kMTiles][4], al[kMTiles][4];
#pragma unroll
      for (int mi = 0; mi < kMTiles; ++mi) {
        if (mi < m_tiles) {
          const int a0 = (16 * mi + g) * ld + f0 + tig;
          SplitTf32(qs[a0], ah[mi][0], al[mi][0]);
          SplitTf32(qs[a0 + 8 * ld], ah[mi][1], al[mi][1]);
          SplitTf32(qs[a0 + 4], ah[mi][2], al[mi][2]);
          SplitTf32(qs[a0 + 8 * ld + 4], ah[mi][3], al[mi][3]);
        }
      }
#pragma unroll
      for (int u = 0; u < kNt; ++u) {
        const int nt = warp + kWarps * u;
        if (nt < n_tiles) {
          const int e0 = (fl + tig) * ldp + 8 * nt + g;
          uint32_t bh0, bl0, bh1, bl1;
          SplitTf32(ps[e0], bh0, bl0);
          SplitTf32(ps[e0 + 4 * ldp], bh1, bl1);
#pragma unroll
          for (int mi = 0; mi < kMTiles; ++mi) {
            if (mi < m_tiles) Mma3(o[mi][u], ah[mi], al[mi], bh0, bh1, bl0, bl1);
          }
        }
      }
    }
  }
#pragma unroll
  for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
    for (int u = 0; u < kNt; ++u) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mi][u][e] *= decay[16 * mi + g + (e / 2) * 8];
    }
  }

  // 3. O += Sw·V over j < len (Sw is zero above the diagonal: row tile mi
  // needs j < 16·mi + 16 only). V and Sw are complete and visible since the
  // barrier at slice 0.
  for (int j0 = 0; j0 < len; j0 += 8) {
    uint32_t b0[kNt], b1[kNt];
#pragma unroll
    for (int u = 0; u < kNt; ++u) {
      const int e0 = (j0 + tig) * ldv + 8 * (warp + kWarps * u) + g;
      const bool here = warp + kWarps * u < n_tiles;
      b0[u] = here ? Bf16Bits(vs[e0]) : 0u;
      b1[u] = here ? Bf16Bits(vs[e0 + 4 * ldv]) : 0u;
    }
#pragma unroll
    for (int mi = 0; mi < kMTiles; ++mi) {
      if (mi < m_tiles && j0 <= 16 * mi + 15) {
        uint32_t ah[4], al[4];
        const int a0 = (16 * mi + g) * kLdSw + j0 + tig;
        const int a_off[4] = {a0, a0 + 8 * kLdSw, a0 + 4, a0 + 8 * kLdSw + 4};
#pragma unroll
        for (int m = 0; m < 4; ++m) ah[m] = __float_as_uint(sw_hi[a_off[m]]), al[m] = __float_as_uint(sw_lo[a_off[m]]);
#pragma unroll
        for (int u = 0; u < kNt; ++u) {
          if (warp + kWarps * u < n_tiles) Mma2(o[mi][u], ah, al, b0[u], b1[u]);
        }
      }
    }
  }

  // 4. GroupNorm statistics of this warp's columns per row: the sum and the
  // squared deviations from their own mean (combined over the warps below).
  __syncthreads();  // every warp is done with Q: the statistics overwrite it
  const int n_here = WarpColumns(warp, dv, n_tiles, kNt);
#pragma unroll
  for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = 0.0f;
#pragma unroll
      for (int u = 0; u < kNt; ++u) {
#pragma unroll
        for (int cc = 0; cc < 2; ++cc) {
          const int d = 8 * (warp + kWarps * u) + 2 * tig + cc;
          sum += d < dv ? o[mi][u][2 * r + cc] : 0.0f;
        }
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float mean_here = n_here > 0 ? sum / static_cast<float>(n_here) : 0.0f;
      float m2 = 0.0f;
#pragma unroll
      for (int u = 0; u < kNt; ++u) {
#pragma unroll
        for (int cc = 0; cc < 2; ++cc) {
          const int d = 8 * (warp + kWarps * u) + 2 * tig + cc;
          const float dev = o[mi][u][2 * r + cc] - mean_here;
          m2 += d < dv ? dev * dev : 0.0f;
        }
      }
      m2 += __shfl_xor_sync(0xffffffffu, m2, 1);
      m2 += __shfl_xor_sync(0xffffffffu, m2, 2);
      if (tig == 0) stats[warp * kT + 16 * mi + g + 8 * r] = make_float2(sum, m2);
    }
  }
  __syncthreads();

  // 5. Combine the statistics (Chan et al.) and write the normalised rows.
  const int64_t ldo = static_cast<int64_t>(heads) * dv;
  const bool pair_out = dv % 2 == 0 && reinterpret_cast<uintptr_t>(out) % 4 == 0;
#pragma unroll
  for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int i = 16 * mi + g + 8 * r;
      if (i >= len) continue;
      float total = 0.0f;
      for (int w = 0; w < kWarps; ++w) total += stats[w * kT + i].x;
      const float mean = total / static_cast<float>(dv);
      float m2 = 0.0f;
      for (int w = 0; w < kWarps; ++w) {
        const int n_w = WarpColumns(w, dv, n_tiles, kNt);
        if (n_w > 0) {
          const float2 part = stats[w * kT + i];
          const float dev = part.x / static_cast<float>(n_w) - mean;
          m2 += part.y + static_cast<float>(n_w) * dev * dev;
        }
      }
      const float inv_std = 1.0f / sqrtf(m2 / static_cast<float>(dv) + kGroupNormEps);
      __nv_bfloat16* o_row = out + (row0 + i) * ldo + static_cast<int64_t>(head) * dv;
#pragma unroll
      for (int u = 0; u < kNt; ++u) {
        const int d = 8 * (warp + kWarps * u) + 2 * tig;
        const float x0 = (o[mi][u][2 * r] - mean) * inv_std, x1 = (o[mi][u][2 * r + 1] - mean) * inv_std;
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

using OutputsKernel = decltype(&ChunkedAttentionOutputsKernel<2, 128>);

// The one place that picks pass 2's instance for a shape.
OutputsKernel SelectOutputsKernel(const OutputsLayout& lay) {
  const bool wide = lay.dv8 / 8 > 2 * kWarps;  // Dv > 128: four column tiles per warp
  const bool f128 = lay.f16 == 128;
  return wide ? (f128 ? &ChunkedAttentionOutputsKernel<4, 128> : &ChunkedAttentionOutputsKernel<4, 0>)
              : (f128 ? &ChunkedAttentionOutputsKernel<2, 128> : &ChunkedAttentionOutputsKernel<2, 0>);
}

}  // namespace

absl::StatusOr<int> ChunkedAttentionOutputsBlocksPerSm(const AttentionDims& dims) {
  const OutputsLayout lay = MakeOutputsLayout(dims.features, dims.value_dim);
  OutputsKernel kernel = SelectOutputsKernel(lay);
  CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, lay.total));
  int blocks = 0;
  CUDA_RETURN_IF_ERROR(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kThreads, lay.total));
  return blocks;
}

size_t ChunkedAttentionOutputsSmemBytes(const AttentionDims& dims) {
  return static_cast<size_t>(MakeOutputsLayout(dims.features, dims.value_dim).total);
}

absl::Status LaunchChunkedAttentionOutputs(const AttentionDims& dims, const float* q, const float* k,
                                           const __nv_bfloat16* v, int64_t v_stride, const float* gammas,
                                           const AttentionChunkDesc* chunks, int num_chunks, int rows, int slots,
                                           const int32_t* first_sub_chunk, const int32_t* sub_chunk_chunk,
                                           const float* sub_chunk_states, int64_t sub_chunks, __nv_bfloat16* out,
                                           cudaStream_t stream) {
  const OutputsLayout lay = MakeOutputsLayout(dims.features, dims.value_dim);
  const bool vec_qk = dims.features % 4 == 0 && Aligned16(q) && Aligned16(k);
  const bool vec_v = dims.value_dim % 8 == 0 && v_stride % 8 == 0 && Aligned16(v);
  OutputsKernel kernel = SelectOutputsKernel(lay);
  const size_t smem_bytes = static_cast<size_t>(lay.total);
  RETURN_IF_ERROR(EnsureDynamicSharedMemory(reinterpret_cast<const void*>(kernel), static_cast<int>(smem_bytes)));
  const dim3 grid(static_cast<unsigned>(sub_chunks), static_cast<unsigned>(dims.heads));
  kernel<<<grid, kThreads, smem_bytes, stream>>>(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, slots,
                                                 first_sub_chunk, sub_chunk_chunk, sub_chunk_states, vec_qk, vec_v,
                                                 out);
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

}  // namespace supra::cuda::attention_internal

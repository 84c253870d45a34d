// Device building blocks of the sampling kernel (sampling.cu): the row
// source with its penalty overrides, the CPU's float arithmetic reproduced
// bit for bit, and block-wide reductions, scans and a shared-memory sort.
// Every function here is called by all threads of a block of kThreads
// threads, with block-uniform arguments, unless it says otherwise.
#ifndef SUPRA_ENGINE_CUDA_SAMPLING_BLOCK_CUH_
#define SUPRA_ENGINE_CUDA_SAMPLING_BLOCK_CUH_

#include <cuda_runtime.h>

#include <cstdint>

namespace supra::cuda::sampling_detail {

constexpr int kThreads = 512;  // one block per row
constexpr int kWarps = kThreads / 32;
constexpr int kChunk = 128;                     // tokens per warp step: 4 per lane
constexpr int kSortCap = 4096;                  // candidates sorted in shared memory at once (a power of two)
constexpr int kMaxItems = kSortCap / kThreads;  // sorted candidates per thread in the scans
constexpr int kUnroll = 4;                      // chunks a warp loads before using any (memory parallelism)
constexpr int kMaxReduce = 10;                  // values one BlockSum reduces at once
constexpr unsigned kFullMask = 0xffffffffu;
constexpr uint64_t kAllRanks = ~uint64_t{0};  // a rank limit that admits every token

// Block-shared scratch of the helpers; reused by every call, which is why
// each helper ends with a barrier after its last read.
struct Scratch {
  double d[kWarps][kMaxReduce];
  int i[kWarps][kMaxReduce];
  double d_total[kMaxReduce];
  int i_total[kMaxReduce];
  float f[kWarps][4];
  double scan[kWarps];
  double scan_exclusive[kWarps];
  double scan_total;
  double before;
  int count;
  int min_index;
  int max_index;
  int result;
  int flag;
};

// ---- the CPU's float arithmetic ------------------------------------------

// sampling_internal::ExpNonPositive (fast_exp.h) operation by operation, with
// intrinsics so that nvcc contracts nothing into FMAs: the weights, and so the
// top-p and min-p cuts, are the CPU's to the bit.
__device__ __forceinline__ float ExpNonPositive(float x) {
  constexpr float kMin = -87.0f;
  const float xc = x < kMin ? kMin : x;
  const int32_t n_int = __float2int_rz(__fsub_rn(__fmul_rn(xc, 1.44269504088896341f), 0.5f));
  const float n = __int2float_rn(n_int);
  float r = __fsub_rn(xc, __fmul_rn(n, 0.693359375f));
  r = __fsub_rn(r, __fmul_rn(n, -2.12194440e-4f));
  float y = 1.9875691500e-4f;
  y = __fadd_rn(__fmul_rn(y, r), 1.3981999507e-3f);
  y = __fadd_rn(__fmul_rn(y, r), 8.3334519073e-3f);
  y = __fadd_rn(__fmul_rn(y, r), 4.1665795894e-2f);
  y = __fadd_rn(__fmul_rn(y, r), 1.6666665459e-1f);
  y = __fadd_rn(__fmul_rn(y, r), 5.0000001201e-1f);
  y = __fadd_rn(__fadd_rn(__fmul_rn(__fmul_rn(y, r), r), r), 1.0f);
  const float scale = __int_as_float((n_int + 127) << 23);
  return x < kMin ? 0.0f : __fmul_rn(y, scale);
}

// ---- ordering --------------------------------------------------------------

// An unsigned key that orders floats like `<`; -0 is mapped to +0 because the
// CPU's MoreLikely treats them as a tie. -inf has the smallest key of all.
__device__ __forceinline__ uint32_t OrderedKey(float x) {
  uint32_t bits = __float_as_uint(x);
  if (bits == 0x80000000u) bits = 0;
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

__device__ __forceinline__ float KeyLogit(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// MoreLikely (candidate.h) as one ascending 64-bit rank: higher logit first,
// then lower id. Distinct tokens have distinct ranks.
__device__ __forceinline__ uint64_t Rank(uint32_t key, int id) {
  return (uint64_t{~key} << 32) | static_cast<uint32_t>(id);
}
__device__ __forceinline__ uint32_t RankKey(uint64_t rank) { return ~static_cast<uint32_t>(rank >> 32); }
__device__ __forceinline__ int RankId(uint64_t rank) { return static_cast<int>(static_cast<uint32_t>(rank)); }

// ---- the row ----------------------------------------------------------------

// One row of logits, and where its penalised logits are read from: a copy
// in shared memory (penalties applied, padded with -inf to whole chunks), or
// else the logits in global memory with the penalised ones patched in from
// the workspace where pen_mask is set.
struct RowSource {
  const float* logits;       // [vocab], fp32, global, as the model produced them
  const float* cache;        // shared [chunks · kChunk], fp32 penalised logits, or nullptr
  const float* penalised;    // [vocab], fp32 workspace: the penalised logit where pen_mask is set
  const uint32_t* pen_mask;  // shared [ceil(vocab / 32)] bitmask of penalised ids, or nullptr
  int vocab;
  bool vec4;  // logits 16-byte aligned and vocab % 4 == 0
};

// Raw logits of tokens i0..i0+3 (i0 % 4 == 0) from global memory; ids past
// the vocabulary read as -inf, which every pass treats as "never a candidate".
__device__ __forceinline__ void LoadRawQuad(const RowSource& s, int i0, float (&raw)[4]) {
  if (s.vec4 && i0 < s.vocab) {
    const float4 v = __ldg(reinterpret_cast<const float4*>(s.logits + i0));
    raw[0] = v.x;
    raw[1] = v.y;
    raw[2] = v.z;
    raw[3] = v.w;
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) raw[k] = i0 + k < s.vocab ? __ldg(s.logits + i0 + k) : -INFINITY;
  }
}

// The penalised logits of a global row: raw patched where pen_mask is set.
__device__ __forceinline__ void PatchPenalised(const RowSource& s, int i0, const float (&raw)[4], float (&pen)[4]) {
#pragma unroll
  for (int k = 0; k < 4; ++k) pen[k] = raw[k];
  if (s.pen_mask != nullptr && i0 < s.vocab) {
    // i0 % 4 == 0, so the four bits share one word.
    const uint32_t bits = (s.pen_mask[i0 >> 5] >> (i0 & 31)) & 0xfu;
    if (bits != 0) {
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if ((bits >> k) & 1u) pen[k] = __ldcg(s.penalised + i0 + k);  // written by this block: read from L2
      }
    }
  }
}

// f(chunk, i0, raw, pen) over the global row: every chunk of kChunk tokens,
// one chunk per warp at a time, lane l taking tokens i0 = chunk·kChunk + 4l
// ... + 3; kUnroll chunks are loaded before any is used. A thread sees its
// tokens in increasing id order. Warp-uniform control flow: f may use warp
// collectives.
template <typename F>
__device__ __forceinline__ void ForEachGlobalQuad(const RowSource& s, F&& f) {
  const int lane = threadIdx.x & 31;
  const int chunks = (s.vocab + kChunk - 1) / kChunk;
  for (int c0 = threadIdx.x >> 5; c0 < chunks; c0 += kWarps * kUnroll) {
    float raw[kUnroll][4];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kWarps;
      if (c < chunks) LoadRawQuad(s, c * kChunk + lane * 4, raw[u]);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kWarps;
      if (c < chunks) {
        float pen[4];
        PatchPenalised(s, c * kChunk + lane * 4, raw[u], pen);
        f(c, c * kChunk + lane * 4, raw[u], pen);
      }
    }
  }
}

// The penalised logits of tokens i0..i0+3, from the cache or the global row.
__device__ __forceinline__ void LoadPenalised(const RowSource& s, int i0, float (&pen)[4]) {
  if (s.cache != nullptr) {
    const float4 v = *reinterpret_cast<const float4*>(s.cache + i0);
    pen[0] = v.x;
    pen[1] = v.y;
    pen[2] = v.z;
    pen[3] = v.w;
  } else {
    float raw[4];
    LoadRawQuad(s, i0, raw);
    PatchPenalised(s, i0, raw, pen);
  }
}

// f(chunk, i0, pen) over the penalised row, in the order of ForEachGlobalQuad.
template <typename F>
__device__ __forceinline__ void ForEachQuad(const RowSource& s, F&& f) {
  if (s.cache == nullptr) {
    ForEachGlobalQuad(s, [&](int c, int i0, const float(&)[4], const float(&pen)[4]) { f(c, i0, pen); });
    return;
  }
  const int lane = threadIdx.x & 31;
  const int chunks = (s.vocab + kChunk - 1) / kChunk;
  for (int c0 = threadIdx.x >> 5; c0 < chunks; c0 += kWarps * kUnroll) {
    float pen[kUnroll][4];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kWarps;
      if (c < chunks) LoadPenalised(s, c * kChunk + lane * 4, pen[u]);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kWarps;
      if (c < chunks) f(c, c * kChunk + lane * 4, pen[u]);
    }
  }
}

// ---- warp and block collectives ----------------------------------------------

__device__ __forceinline__ double WarpSum(double v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// Sums each of d[0..N) and i[0..M) over the block; every thread gets the
// same results (the warps' partial sums are added in warp order).
template <int N, int M>
__device__ __forceinline__ void BlockSum(double (&d)[N], int (&i)[M], Scratch& sh) {
  static_assert(N <= kMaxReduce && M <= kMaxReduce, "BlockSum: too many values");
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int j = 0; j < N; ++j) d[j] = WarpSum(d[j]);
#pragma unroll
  for (int j = 0; j < M; ++j) i[j] = __reduce_add_sync(kFullMask, i[j]);
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < N; ++j) sh.d[warp][j] = d[j];
#pragma unroll
    for (int j = 0; j < M; ++j) sh.i[warp][j] = i[j];
  }
  __syncthreads();
  // One thread per value adds the warps' partial sums in warp order.
  const int t = threadIdx.x;
  if (t < N) {
    double sum = 0;
    for (int w = 0; w < kWarps; ++w) sum += sh.d[w][t];
    sh.d_total[t] = sum;
  } else if (t >= 32 && t < 32 + M) {
    int sum = 0;
    for (int w = 0; w < kWarps; ++w) sum += sh.i[w][t - 32];
    sh.i_total[t - 32] = sum;
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < N; ++j) d[j] = sh.d_total[j];
#pragma unroll
  for (int j = 0; j < M; ++j) i[j] = sh.i_total[j];
  __syncthreads();
}

__device__ __forceinline__ double BlockSum1(double v, Scratch& sh) {
  double d[1] = {v};
  int none[1] = {0};
  BlockSum(d, none, sh);
  return d[0];
}

// The block's largest int (min == false) or smallest (min == true).
__device__ __forceinline__ int BlockExtreme(int v, bool min, Scratch& sh) {
  if (threadIdx.x == 0) {
    sh.min_index = INT32_MAX;
    sh.max_index = INT32_MIN;
  }
  __syncthreads();
  if (min) {
    atomicMin(&sh.min_index, v);
  } else {
    atomicMax(&sh.max_index, v);
  }
  __syncthreads();
  const int r = min ? sh.min_index : sh.max_index;
  __syncthreads();
  return r;
}

// Exclusive prefix sum of v over the threads in thread order; *total gets
// the block's sum.
__device__ __forceinline__ double BlockExclusiveScan(double v, double* total, Scratch& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  double inclusive = v;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const double y = __shfl_up_sync(kFullMask, inclusive, offset);
    if (lane >= offset) inclusive += y;
  }
  double exclusive = __shfl_up_sync(kFullMask, inclusive, 1);
  if (lane == 0) exclusive = 0;
  if (lane == 31) sh.scan[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const double x = lane < kWarps ? sh.scan[lane] : 0.0;
    double xi = x;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const double y = __shfl_up_sync(kFullMask, xi, offset);
      if (lane >= offset) xi += y;
    }
    double xe = __shfl_up_sync(kFullMask, xi, 1);
    if (lane == 0) xe = 0;
    if (lane < kWarps) sh.scan_exclusive[lane] = xe;
    if (lane == kWarps - 1) sh.scan_total = xi;
  }
  __syncthreads();
  const double result = sh.scan_exclusive[warp] + exclusive;
  *total = sh.scan_total;
  __syncthreads();
  return result;
}

// ---- candidates in shared memory ---------------------------------------------

// Collects the ranks of the tokens for which member(i, pen) holds into
// buf[0..count) in no particular order; returns count (at most kSortCap: the
// callers count the members first).
template <typename Member>
__device__ __forceinline__ int GatherRanks(const RowSource& s, Member member, uint64_t* buf, Scratch& sh) {
  if (threadIdx.x == 0) sh.count = 0;
  __syncthreads();
  const int lane = threadIdx.x & 31;
  ForEachQuad(s, [&](int, int i0, const float(&pen)[4]) {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const bool is = member(i0 + k, pen[k]);
      const unsigned mask = __ballot_sync(kFullMask, is);
      if (mask == 0) continue;
      int base = 0;
      if (lane == 0) base = atomicAdd(&sh.count, __popc(mask));
      base = __shfl_sync(kFullMask, base, 0);
      if (is) {
        const int pos = base + __popc(mask & ((1u << lane) - 1u));
        if (pos < kSortCap) buf[pos] = Rank(OrderedKey(pen[k]), i0 + k);
      }
    }
  });
  __syncthreads();
  const int count = min(sh.count, kSortCap);
  __syncthreads();
  return count;
}

// Sorts buf[0..m) ascending (m <= kSortCap) with a bitonic network over the
// next power of two, padded with the largest rank.
__device__ __forceinline__ void SortRanks(uint64_t* buf, int m) {
  int p = 2;
  while (p < m) p <<= 1;
  for (int i = m + static_cast<int>(threadIdx.x); i < p; i += kThreads) buf[i] = kAllRanks;
  __syncthreads();
  for (int k = 2; k <= p; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int t = threadIdx.x; t < p / 2; t += kThreads) {
        const int lo = 2 * t - (t & (j - 1));
        const int hi = lo + j;
        const uint64_t a = buf[lo], b = buf[hi];
        if ((a > b) == ((lo & k) == 0)) {
          buf[lo] = b;
          buf[hi] = a;
        }
      }
      __syncthreads();
    }
  }
}

// The target of a cut: `value` itself (fixed), or value × the total weight.
// strict: the first token whose cumulative weight exceeds the target (the
// draw); else the first whose cumulative weight reaches it (top-p, top-k).
struct Target {
  bool fixed;
  double value;
  bool strict;
};

__device__ __forceinline__ bool Reached(double cumulative, double target, bool strict) {
  return strict ? target < cumulative : cumulative >= target;
}

struct Crossing {
  int first;          // first j whose cumulative weight reaches the target, -1 if none
  int last_positive;  // last j with a positive weight, -1 if none
};

// Walks buf[0..m) in order with weights weight(j, rank) starting from
// `base`: the CPU's sequential cumulative sum, here a block scan.
template <typename Weight>
__device__ __forceinline__ Crossing FirstCrossing(const uint64_t* buf, int m, Weight weight, double base, Target target,
                                                  Scratch& sh) {
  const int per = (m + kThreads - 1) / kThreads;  // <= kMaxItems
  const int begin = static_cast<int>(threadIdx.x) * per;
  double w[kMaxItems];
  double local = 0;
#pragma unroll
  for (int q = 0; q < kMaxItems; ++q) {
    const int j = begin + q;
    w[q] = (q < per && j < m) ? static_cast<double>(weight(j, buf[j])) : 0.0;
    local += w[q];
  }
  double total;
  const double exclusive = BlockExclusiveScan(local, &total, sh);
  const double goal = target.fixed ? target.value : target.value * total;
  int first = INT32_MAX, last_positive = -1;
  double cumulative = base + exclusive;
#pragma unroll
  for (int q = 0; q < kMaxItems; ++q) {
    const int j = begin + q;
    if (q < per && j < m) {
      cumulative += w[q];
      if (first == INT32_MAX && w[q] > 0 && Reached(cumulative, goal, target.strict)) first = j;
      if (w[q] > 0) last_positive = j;
    }
  }
  first = BlockExtreme(first, /*min=*/true, sh);
  last_positive = BlockExtreme(last_positive, /*min=*/false, sh);
  return {first == INT32_MAX ? -1 : first, last_positive};
}

}  // namespace supra::cuda::sampling_detail

#endif  // SUPRA_ENGINE_CUDA_SAMPLING_BLOCK_CUH_

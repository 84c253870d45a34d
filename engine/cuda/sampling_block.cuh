// Device building blocks of the sampling kernel (sampling.cu): exact sums of
// weights, the CPU's float arithmetic reproduced bit for bit, one block's
// slice of the row, block-wide reductions, scans and a shared-memory sort, and
// the cluster's barrier and shared-memory access.
// Every function here is called by all threads of a block of kThreads
// threads, with block-uniform arguments, unless it says otherwise.
#ifndef SUPRA_ENGINE_CUDA_SAMPLING_BLOCK_CUH_
#define SUPRA_ENGINE_CUDA_SAMPLING_BLOCK_CUH_

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace supra::cuda::sampling_detail {

constexpr int kThreads = 512;  // per block; a cluster of blocks per row
constexpr int kWarps = kThreads / 32;
constexpr int kChunk = 128;                     // tokens per warp step: 4 per lane
constexpr int kMaxCluster = 8;                  // blocks per row (the portable cluster size)
constexpr int kMaxSlice = 32768;                // tokens one block holds (kMaxSampleVocab / kMaxCluster)
constexpr int kMaxChunks = kMaxSlice / kChunk;  // chunks of a slice
constexpr int kSortCap = 4096;                  // candidates sorted in shared memory at once (a power of two)
constexpr int kMaxItems = kSortCap / kThreads;  // sorted candidates per thread in the scans
constexpr int kBins = 256;                      // RankCut's histogram
constexpr int kUnroll = 4;                      // chunks a warp loads from global memory before using any
constexpr unsigned kFullMask = 0xffffffffu;
constexpr uint64_t kAllRanks = ~uint64_t{0};  // a rank limit that admits every token
static_assert(kMaxChunks <= kThreads && kBins <= kThreads, "one thread per chunk and per bin");

// ---- exact sums -------------------------------------------------------------

// A sum of weights, exact, and how many positive weights it holds. A weight
// w in [0, 2) (a float) counts as floor(w · 2^88) units of 2^-88, split at
// 2^-44 into `whole` = floor(w · 2^44) and the next 44 bits `part`; the
// halves of up to 2^18 weights add without overflow (each stays below 2^63).
// So a sum is one integer whatever the order of the additions: no rounding,
// and the same however the row is split among blocks. Truncation loses less
// than 2^-88 per weight, 2^-70 per row, where the CPU's float64 sums round
// at 2^-53 of the total (at least 1, the top token's weight) per addition.
struct Tally {
  unsigned long long whole;  // units of 2^-44
  unsigned long long part;   // units of 2^-88; may exceed 2^44 until Normalised
  unsigned long long count;  // positive weights added
};

constexpr int kPartBits = 44;
constexpr unsigned long long kPartMask = (1ull << kPartBits) - 1;

__device__ __forceinline__ Tally operator+(const Tally& a, const Tally& b) {
  return {a.whole + b.whole, a.part + b.part, a.count + b.count};
}
__device__ __forceinline__ Tally& operator+=(Tally& a, const Tally& b) { return a = a + b; }
// n times a weight's tally (n <= 2^18).
__device__ __forceinline__ Tally Times(const Tally& a, unsigned long long n) {
  return {a.whole * n, a.part * n, a.count * n};
}

__device__ __forceinline__ Tally ToTally(float w) {
  constexpr float kScale = 17592186044416.0f;  // 2^44: products are exact
  const float scaled = __fmul_rn(w, kScale);
  const unsigned long long whole = __float2ull_rz(scaled);
  // trunc(scaled) has at most 24 significant bits: the conversion back and the
  // difference (the fraction's bits) are exact.
  const float fraction = __fsub_rn(scaled, __ull2float_rz(whole));
  return {whole, __float2ull_rz(__fmul_rn(fraction, kScale)), w > 0.0f ? 1ull : 0ull};
}

__device__ __forceinline__ Tally Normalised(const Tally& a) {
  return {a.whole + (a.part >> kPartBits), a.part & kPartMask, a.count};
}

__device__ __forceinline__ double ToDouble(const Tally& a) {
  const Tally n = Normalised(a);
  return __dadd_rn(__dmul_rn(__ull2double_rn(n.whole), 0x1p-44), __dmul_rn(__ull2double_rn(n.part), 0x1p-88));
}

// The target of a cut: `value` itself (fixed), or value × the total weight.
// strict: the first token whose cumulative weight exceeds the target (the
// draw); else the first whose cumulative weight reaches it (top-p, top-k).
struct Target {
  bool fixed;
  double value;
  bool strict;
};

// A target on the 2^-88 grid of the tallies: floor(value) there, and whether
// that is the value itself, which decides every comparison with a tally exactly.
struct Goal {
  unsigned long long whole, part;  // normalised
  bool exact;
  bool strict;
};

__device__ __forceinline__ Goal MakeGoal(double value, bool strict) {
  const double v = value > 0 ? fmin(value, 0x1p19) : 0.0;  // sums never exceed 2^18
  const double scaled = __dmul_rn(v, 0x1p44);              // exact, < 2^63
  const unsigned long long whole = __double2ull_rz(scaled);
  const double rest = __dmul_rn(__dsub_rn(scaled, __ull2double_rz(whole)), 0x1p44);  // exact
  const unsigned long long part = __double2ull_rz(rest);
  return {whole, part, rest == __ull2double_rz(part), strict};
}

// Whether a cumulative weight reaches the goal: value < cumulative (strict)
// or value <= cumulative.
__device__ __forceinline__ bool Reached(const Tally& cumulative, const Goal& g) {
  const Tally c = Normalised(cumulative);
  if (c.whole != g.whole) return c.whole > g.whole;
  if (c.part != g.part) return c.part > g.part;
  return !g.strict && g.exact;
}

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

// ---- the cluster -------------------------------------------------------------

// Barrier of every thread of the cluster; shared-memory writes before it are
// visible to every block after it (release / acquire).
__device__ __forceinline__ void ClusterSync() { cooperative_groups::this_cluster().sync(); }
__device__ __forceinline__ int ClusterRank() {
  return static_cast<int>(cooperative_groups::this_cluster().block_rank());
}
__device__ __forceinline__ int ClusterSize() {
  return static_cast<int>(cooperative_groups::this_cluster().num_blocks());
}
// The same shared variable in block `rank` of the cluster.
template <typename T>
__device__ __forceinline__ T* InBlock(T* p, int rank) {
  return cooperative_groups::this_cluster().map_shared_rank(p, static_cast<unsigned>(rank));
}

// ---- the slice -----------------------------------------------------------------

// The tokens a block holds: ids [base, base + len) of the row, penalised, in
// shared memory; ids past the vocabulary read as -inf, which every pass treats
// as "never a candidate".
struct Slice {
  float* cache;  // shared [len], fp32
  int base;      // id of cache[0]
  int len;       // a multiple of kChunk, <= kMaxSlice
};

// f(chunk, i0, pen) over the slice: chunk c of kChunk tokens is taken by warp
// c % kWarps, lane l holding ids i0 = base + c·kChunk + 4l ... + 3. A thread
// sees its ids in increasing order. Warp-uniform control flow: f may use warp
// collectives.
template <typename F>
__device__ __forceinline__ void ForEachQuad(const Slice& s, F&& f) {
  const int lane = threadIdx.x & 31;
  for (int c = threadIdx.x >> 5; c < s.len / kChunk; c += kWarps) {
    const int i = c * kChunk + lane * 4;
    const float4 v = *reinterpret_cast<const float4*>(s.cache + i);
    const float pen[4] = {v.x, v.y, v.z, v.w};
    f(c, s.base + i, pen);
  }
}

// ---- warp and block collectives ----------------------------------------------

// Block-shared scratch of the collectives; reused by every call, which is why
// each ends with a barrier after its last read.
struct Scratch {
  Tally t[kWarps];
  int i[kWarps][kMaxCluster];
  int i_total[kMaxCluster];
  int min_index;
  int max_index;
};

__device__ __forceinline__ Tally ShuffleXor(const Tally& a, int offset) {
  return {__shfl_xor_sync(kFullMask, a.whole, offset), __shfl_xor_sync(kFullMask, a.part, offset),
          __shfl_xor_sync(kFullMask, a.count, offset)};
}
__device__ __forceinline__ Tally ShuffleUp(const Tally& a, int offset) {
  return {__shfl_up_sync(kFullMask, a.whole, offset), __shfl_up_sync(kFullMask, a.part, offset),
          __shfl_up_sync(kFullMask, a.count, offset)};
}
__device__ __forceinline__ Tally Shuffle(const Tally& a, int lane) {
  return {__shfl_sync(kFullMask, a.whole, lane), __shfl_sync(kFullMask, a.part, lane),
          __shfl_sync(kFullMask, a.count, lane)};
}

// The warp's sum, in every lane (a warp collective).
__device__ __forceinline__ Tally WarpSum(Tally v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += ShuffleXor(v, offset);
  return v;
}

// The warp's inclusive prefix sum in lane order (a warp collective).
__device__ __forceinline__ Tally WarpInclusiveScan(Tally v) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const Tally y = ShuffleUp(v, offset);
    if (lane >= offset) v += y;
  }
  return v;
}

// The block's sum; every thread gets it.
__device__ __forceinline__ Tally BlockSum(Tally v, Scratch& sh) {
  v = WarpSum(v);
  if ((threadIdx.x & 31) == 0) sh.t[threadIdx.x >> 5] = v;
  __syncthreads();
  Tally total{};
#pragma unroll
  for (int w = 0; w < kWarps; ++w) total += sh.t[w];
  __syncthreads();
  return total;
}

// Exclusive prefix sum of v over the threads in thread order; *total gets
// the block's sum.
__device__ __forceinline__ Tally BlockExclusiveScan(Tally v, Tally* total, Scratch& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const Tally inclusive = WarpInclusiveScan(v);
  Tally exclusive = ShuffleUp(inclusive, 1);
  if (lane == 0) exclusive = Tally{};
  if (lane == 31) sh.t[warp] = inclusive;
  __syncthreads();
  Tally before{}, all{};
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += sh.t[w];
    all += sh.t[w];
  }
  *total = all;
  __syncthreads();
  return before + exclusive;
}

// Sums each of v[0..kMaxCluster) over the block; every thread gets the sums.
__device__ __forceinline__ void BlockSumInts(int (&v)[kMaxCluster], Scratch& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int j = 0; j < kMaxCluster; ++j) v[j] = __reduce_add_sync(kFullMask, v[j]);
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < kMaxCluster; ++j) sh.i[warp][j] = v[j];
  }
  __syncthreads();
  if (threadIdx.x < kMaxCluster) {
    int sum = 0;
    for (int w = 0; w < kWarps; ++w) sum += sh.i[w][threadIdx.x];
    sh.i_total[threadIdx.x] = sum;
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < kMaxCluster; ++j) v[j] = sh.i_total[j];
  __syncthreads();
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

// ---- candidates in shared memory ---------------------------------------------

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

struct Crossing {
  int first;          // first j whose cumulative weight reaches the target, -1 if none
  int last_positive;  // last j with a positive weight, -1 if none
};

// Walks buf[0..m) in order with weights weight(rank) (floats) on top of
// `base`: the CPU's sequential cumulative sum, here an exact block scan.
template <typename Weight>
__device__ Crossing FirstCrossing(const uint64_t* buf, int m, Weight weight, Tally base, Target target, Scratch& sh) {
  const int per = (m + kThreads - 1) / kThreads;  // <= kMaxItems
  const int begin = static_cast<int>(threadIdx.x) * per;
  float w[kMaxItems];
  Tally local{};
#pragma unroll
  for (int q = 0; q < kMaxItems; ++q) {
    const int j = begin + q;
    w[q] = (q < per && j < m) ? weight(buf[j]) : 0.0f;
    local += ToTally(w[q]);
  }
  Tally total;
  const Tally exclusive = BlockExclusiveScan(local, &total, sh);
  const Goal goal = MakeGoal(target.fixed ? target.value : target.value * ToDouble(total), target.strict);
  int first = INT32_MAX, last_positive = -1;
  Tally cumulative = base + exclusive;
#pragma unroll
  for (int q = 0; q < kMaxItems; ++q) {
    const int j = begin + q;
    if (w[q] > 0.0f) {  // zero past m
      cumulative += ToTally(w[q]);
      if (first == INT32_MAX && Reached(cumulative, goal)) first = j;
      last_positive = j;
    }
  }
  first = BlockExtreme(first, /*min=*/true, sh);
  last_positive = BlockExtreme(last_positive, /*min=*/false, sh);
  return {first == INT32_MAX ? -1 : first, last_positive};
}

}  // namespace supra::cuda::sampling_detail

#endif  // SUPRA_ENGINE_CUDA_SAMPLING_BLOCK_CUH_

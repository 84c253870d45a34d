// The sampling kernel: a cluster of 1 to kMaxCluster blocks of kThreads
// threads per row of logits, each block holding a slice of the row in its
// shared memory; the blocks of a row share their partial results through
// distributed shared memory.
//
// A row's steps, each a pass of every block over its slice or less, with the
// cluster barriers they take:
//   load        the slice from global memory into shared memory (-inf past
//               the vocabulary): max of the raw logits, the CPU's validity
//               checks (NaN, +inf), and, without penalties, max, argmax and
//               smallest finite value of the penalised logits
//   penalties   the window's counts of the slice's ids (global atomics in the
//               workspace row); the penalised logits replace the raw ones in
//               the slice; then the penalised statistics
//   statistics  merged over the cluster (1 barrier): every block has the
//               row's. Invalid rows (NaN, +inf, every logit -inf) stop here
//   normaliser  with logprobs: the slice's exact sum of exp(raw - raw max)
//   greedy      the argmax (ties to the lowest id), written by block 0
//   top-k       RankCut with weight 1 (2 barriers a level): the rank of the
//               k-th most likely token; for k <= kSortCap the candidates are
//               sorted in block 0 (the cut gathers them itself when they fit,
//               else 2 barriers more) and top-p, min-p and the draw walk them
//               as CandidateSet does
//   top-p       RankCut over the weights: the last kept rank
//   draw        IdOrderSelect (no top-k: the CPU's dense draw in id order,
//               1 barrier, written by the block holding the token) or RankCut
//               (top-k beyond kSortCap: most likely first)
//   exit        1 barrier: no block leaves while another may read its memory
// Every sum is exact (Tally): the token and logprob of a row do not depend on
// how many blocks share it, nor on the other rows of the batch.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_limits.h"
#include "engine/cuda/sampling.h"
#include "engine/cuda/sampling_block.cuh"
#include "engine/cuda/sampling_select.cuh"
#include "engine/sampling/philox.h"
#include "engine/util/status_macros.h"

namespace supra::cuda {
namespace sampling_detail {
namespace {

constexpr int kSortBytes = kSortCap * static_cast<int>(sizeof(uint64_t));
static_assert(kMaxSampleVocab <= int64_t{kMaxSlice} * kMaxCluster, "every vocabulary fits in a cluster's slices");

// Fewer tokens per block than this do not pay for the cluster's barriers.
constexpr int64_t kMinSlice = 2048;

// Blocks per row: enough for the slices to fit in shared memory; otherwise as
// many as fill the SMs once (n rows · blocks <= SMs), up to kMaxCluster, and
// none with fewer than kMinSlice tokens.
int ClusterBlocks(int64_t n, int64_t vocab, int sms) {
  const auto fewest = static_cast<int>((vocab + kMaxSlice - 1) / kMaxSlice);
  const auto most = static_cast<int>(std::clamp<int64_t>(vocab / kMinSlice, 1, kMaxCluster));
  int blocks = kMaxCluster;
  while (blocks > 1 && n * blocks > sms) blocks /= 2;
  return std::max(fewest, std::min(blocks, most));
}

// Tokens per block: whole chunks; the last block's slice is padded with -inf.
int SliceLength(int64_t vocab, int blocks) {
  const int64_t per_block = (vocab + blocks - 1) / blocks;
  return static_cast<int>((per_block + kChunk - 1) / kChunk * kChunk);
}

// The dynamic shared memory of a launch: the sort buffer, then the slice.
int DynamicSharedBytes(int slice) { return kSortBytes + slice * static_cast<int>(sizeof(float)); }

// The CPU's penalised logit (ApplyPenalties) of a token seen c >= 1 times:
// in double and without contraction, l / r or l · r, minus presence +
// frequency · c, clamped to the finite floats; -inf stays (and NaN, which
// the statistics reject later, as the CPU does).
__device__ float Penalise(float l, int c, const DeviceSamplingParams& p) {
  if (isinf(l)) return l;
  constexpr double kMax = 3.40282346638528859811704183484516925e+38;  // FLT_MAX
  double v = l > 0 ? __ddiv_rn(static_cast<double>(l), static_cast<double>(p.repetition_penalty))
                   : __dmul_rn(static_cast<double>(l), static_cast<double>(p.repetition_penalty));
  v = __dsub_rn(v, __dadd_rn(static_cast<double>(p.presence_penalty),
                             __dmul_rn(static_cast<double>(p.frequency_penalty), static_cast<double>(c))));
  v = v < -kMax ? -kMax : (kMax < v ? kMax : v);
  return __double2float_rn(v);
}

// Raw logits of tokens i0..i0+3 (i0 % 4 == 0) from global memory; ids past
// the vocabulary read as -inf.
__device__ __forceinline__ void LoadRawQuad(const float* logits, int vocab, bool vec4, int i0, float (&raw)[4]) {
  if (vec4 && i0 < vocab) {
    const float4 v = __ldg(reinterpret_cast<const float4*>(logits + i0));
    raw[0] = v.x;
    raw[1] = v.y;
    raw[2] = v.z;
    raw[3] = v.w;
  } else {
#pragma unroll
    for (int k = 0; k < 4; ++k) raw[k] = i0 + k < vocab ? __ldg(logits + i0 + k) : -INFINITY;
  }
}

// Per-thread statistics before the cluster's reduction.
struct StatsAccumulator {
  Stats s{-INFINITY, INFINITY, -INFINITY, INT32_MAX, 0};

  __device__ void AddPenalised(float pen, int id) {
    s.bad |= !(pen < INFINITY);
    if (pen > s.max) {  // a thread sees its ids in increasing order: the first maximum stays
      s.max = pen;
      s.argmax = id;
    }
    if (pen > -INFINITY && pen < s.min) s.min = pen;
  }
  __device__ void AddRaw(float raw) {
    s.bad |= !(raw < INFINITY);
    s.raw_max = raw > s.raw_max ? raw : s.raw_max;
  }
};

// The load pass: the slice into shared memory (published by the next
// barrier), raw statistics, and the penalised ones unless penalties will
// change the slice (with_penalised false). kUnroll chunks are loaded before
// any is used.
__device__ void LoadSlice(const float* logits,  // [vocab], fp32, global
                          int vocab, bool vec4, const Slice& s, bool with_penalised, StatsAccumulator& a) {
  const int lane = threadIdx.x & 31;
  const int chunks = s.len / kChunk;
  for (int c0 = threadIdx.x >> 5; c0 < chunks; c0 += kWarps * kUnroll) {
    float raw[kUnroll][4];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kWarps;
      if (c < chunks) LoadRawQuad(logits, vocab, vec4, s.base + c * kChunk + lane * 4, raw[u]);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kWarps;
      if (c < chunks) {
        const int i = c * kChunk + lane * 4;
        *reinterpret_cast<float4*>(s.cache + i) = make_float4(raw[u][0], raw[u][1], raw[u][2], raw[u][3]);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          a.AddRaw(raw[u][k]);
          if (with_penalised) a.AddPenalised(raw[u][k], s.base + i + k);
        }
      }
    }
  }
}

// Penalties of the slice's ids: counts[t] (the workspace row) counts the
// window's t, and the penalised logit replaces the raw one in the slice.
// Every block reads the whole window; returns false (in every block) when it
// holds an id outside the vocabulary. Ends with a barrier.
__device__ bool PenaliseSlice(const Slice& s, int vocab, const int32_t* window,  // [window_len], int32 ids
                              int window_len, const DeviceSamplingParams& p,
                              int32_t* counts,  // [vocab], int32 workspace
                              Shared& sm) {
  if (threadIdx.x == 0) sm.result = 0;
  __syncthreads();
  const int end = min(s.base + s.len, vocab);
  for (int j = threadIdx.x; j < window_len; j += kThreads) {
    const int32_t t = window[j];
    if (t < 0 || t >= vocab) {
      sm.result = 1;
    } else if (t >= s.base && t < end) {
      counts[t] = 0;
    }
  }
  __syncthreads();
  const bool ok = sm.result == 0;
  if (ok) {
    for (int j = threadIdx.x; j < window_len; j += kThreads) {
      const int32_t t = window[j];
      if (t >= s.base && t < end) atomicAdd(&counts[t], 1);
    }
  }
  __syncthreads();
  if (ok) {
    // The first thread to take an id's count applies it.
    for (int j = threadIdx.x; j < window_len; j += kThreads) {
      const int32_t t = window[j];
      if (t >= s.base && t < end) {
        const int c = atomicExch(&counts[t], 0);
        if (c > 0) s.cache[t - s.base] = Penalise(s.cache[t - s.base], c, p);
      }
    }
  }
  __syncthreads();
  return ok;
}

__device__ __forceinline__ void Merge(Stats& a, const Stats& b) {
  if (b.max > a.max || (b.max == a.max && b.argmax < a.argmax)) {
    a.max = b.max;
    a.argmax = b.argmax;
  }
  a.min = b.min < a.min ? b.min : a.min;
  a.raw_max = b.raw_max > a.raw_max ? b.raw_max : a.raw_max;
  a.bad |= b.bad;
}

// Merges a warp's statistics (every lane gets them).
__device__ __forceinline__ Stats WarpMerge(Stats s) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Stats other{__shfl_xor_sync(kFullMask, s.max, offset), __shfl_xor_sync(kFullMask, s.min, offset),
                      __shfl_xor_sync(kFullMask, s.raw_max, offset), __shfl_xor_sync(kFullMask, s.argmax, offset),
                      __shfl_xor_sync(kFullMask, s.bad, offset)};
    Merge(s, other);
  }
  return s;
}

// The row's statistics from every thread's of the cluster: the same in every
// block (max, min and argmax do not depend on the order of merging). One
// cluster barrier.
__device__ Stats ClusterStats(const StatsAccumulator& a, Shared& sm) {
  const int lane = threadIdx.x & 31;
  const Stats warp = WarpMerge(a.s);
  if (lane == 0) sm.warp_stats[threadIdx.x >> 5] = warp;
  __syncthreads();
  if (threadIdx.x == 0) {
    Stats block = sm.warp_stats[0];
    for (int w = 1; w < kWarps; ++w) Merge(block, sm.warp_stats[w]);
    sm.ex.stats = block;
  }
  ClusterSync();
  if (threadIdx.x < 32) {
    Stats s{-INFINITY, INFINITY, -INFINITY, INT32_MAX, 0};
    if (lane < ClusterSize()) s = InBlock(&sm.ex, lane)->stats;
    s = WarpMerge(s);
    if (lane == 0) sm.stats = s;
  }
  __syncthreads();
  return sm.stats;
}

// The slice's share of LogprobsCalculator's normaliser: the exact sum of
// ExpNonPositive(raw - raw_max) (the CPU's float terms), from the raw logits
// (in the slice unless penalties changed it). Written to the Exchange, for
// the block that writes the token after the next cluster barrier.
__device__ void NormaliserShare(const Slice& s, const float* logits,  // [vocab], fp32, global
                                int vocab, bool vec4, bool from_global, float raw_max, Shared& sm) {
  Tally sum{};
  ForEachQuad(s, [&](int, int i0, const float(&pen)[4]) {
    float raw[4] = {pen[0], pen[1], pen[2], pen[3]};
    if (from_global) LoadRawQuad(logits, vocab, vec4, i0, raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) sum += ToTally(ExpNonPositive(__fsub_rn(raw[k], raw_max)));
  });
  sum = BlockSum(sum, sm.sh);
  if (threadIdx.x == 0) sm.ex.exp_sum = sum;
}

__global__ void __launch_bounds__(kThreads) SampleKernel(const float* __restrict__ logits,  // [n, vocab], fp32
                                                         int vocab, int slice_len, bool vec4,
                                                         const DeviceSamplingParams* __restrict__ params,  // [n]
                                                         const int32_t* __restrict__ history,  // [offsets[n]], int32
                                                         const int32_t* __restrict__ offsets,  // [n + 1], int32
                                                         int32_t* __restrict__ tokens,         // [n], int32
                                                         float* __restrict__ logprobs,         // [n], fp32, or nullptr
                                                         int32_t* __restrict__ workspace) {    // [n, vocab], int32
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint64_t* buf = reinterpret_cast<uint64_t*>(shared_bytes);  // [kSortCap]
  __shared__ Shared sm;

  const int me = ClusterRank();
  const int64_t row = blockIdx.x / ClusterSize();
  const DeviceSamplingParams p = params[row];
  const float* row_logits = logits + row * vocab;
  const Slice s{reinterpret_cast<float*>(shared_bytes + kSortBytes), me * slice_len, slice_len};

  int window_len = 0, window_end = 0;
  if (p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    window_end = offsets[row + 1];
    window_len = min(max(window_end - offsets[row], 0), max(p.penalty_window, 0));
  }
  const int32_t* window = history + (window_end - window_len);

  StatsAccumulator a;
  LoadSlice(row_logits, vocab, vec4, s, /*with_penalised=*/window_len == 0, a);
  bool window_ok = true;
  if (window_len > 0) {
    window_ok = PenaliseSlice(s, vocab, window, window_len, p, workspace + row * vocab, sm);
    if (window_ok) {
      ForEachQuad(s, [&](int, int i0, const float(&pen)[4]) {
#pragma unroll
        for (int k = 0; k < 4; ++k) a.AddPenalised(pen[k], i0 + k);
      });
    }
  }
  const Stats st = ClusterStats(a, sm);
  if (!window_ok || st.bad != 0 || !(st.max > -INFINITY)) {
    if (me == 0 && threadIdx.x == 0) {
      tokens[row] = -1;
      if (logprobs != nullptr) logprobs[row] = NAN;
    }
    ClusterSync();
    return;
  }
  if (logprobs != nullptr) NormaliserShare(s, row_logits, vocab, vec4, window_len > 0, st.raw_max, sm);

  int token = -1;
  bool writer = false;  // this block writes the row's results
  if (p.temperature == 0.0f) {
    if (logprobs != nullptr) ClusterSync();  // publishes the normaliser's shares
    token = st.argmax;
    writer = me == 0;
  } else {
    const float inv_t = __fdiv_rn(1.0f, p.temperature);
    const double u = UniformForToken(p.seed, static_cast<uint64_t>(p.token_index));
    const float max_logit = st.max, min_p = p.min_p;
    // The CPU's weight of a logit, exp((l - max) / T) with the top token at
    // exactly 1, and the weight min-p leaves (DropBelow: w < min_p goes).
    auto weight = [=](float l) { return ExpNonPositive(__fmul_rn(__fsub_rn(l, max_logit), inv_t)); };
    auto kept_weight = [=](float l) {
      const float w = weight(l);
      return w < min_p ? 0.0f : w;
    };
    // The first level of the weight cuts spans the logits within 88·T of the
    // maximum (lighter ones weigh 0); the top-k count cut the whole range.
    const float range = __fsub_rn(st.max, st.min);
    const float weight_span = fminf(range, __fmul_rn(p.temperature, 88.0f));
    auto rank_of = [](uint64_t rank) { return KeyLogit(RankKey(rank)); };

    if (p.top_k > 0 && p.top_k < vocab) {
      const bool sorted = p.top_k <= kSortCap;
      const Cut top_k = RankCut<true>(
          s, st.max, st.min, range, kAllRanks, [](float) { return 1.0f; },
          Target{true, static_cast<double>(p.top_k), false}, sorted, buf, sm);
      if (sorted) {
        // CandidateSet: the k candidates most likely first, then top-p,
        // min-p and the draw over them, in block 0.
        int m = top_k.prefix + 1;
        if (top_k.prefix < 0) {
          m = ClusterGatherToFirst(
              s, [&](uint32_t key, int id, float pen) { return pen > -INFINITY && Rank(key, id) <= top_k.rank; }, buf,
              sm);
          if (me == 0) SortRanks(buf, m);
        }
        if (me == 0) {
          int kept = m;
          if (p.top_p < 1.0f) {
            const Crossing cut = FirstCrossing(
                buf, m, [&](uint64_t rank) { return weight(rank_of(rank)); }, Tally{},
                Target{false, static_cast<double>(p.top_p), false}, sm.sh);
            kept = (cut.first >= 0 ? cut.first : m - 1) + 1;
          }
          const Crossing draw = FirstCrossing(
              buf, kept, [&](uint64_t rank) { return kept_weight(rank_of(rank)); }, Tally{}, Target{false, u, true},
              sm.sh);
          token = RankId(buf[draw.first >= 0 ? draw.first : max(draw.last_positive, 0)]);
          writer = true;
        }
      } else {
        // Too many candidates for shared memory: the same walk by RankCut.
        uint64_t top_p_rank = top_k.rank;
        if (p.top_p < 1.0f) {
          top_p_rank = RankCut<false>(s, st.max, st.min, weight_span, top_k.rank, weight,
                                      Target{false, static_cast<double>(p.top_p), false}, false, buf, sm)
                           .rank;
        }
        token = RankId(RankCut<false>(s, st.max, st.min, weight_span, top_p_rank, kept_weight, Target{false, u, true},
                                      false, buf, sm)
                           .rank);
        writer = me == 0;
      }
    } else {
      // DenseDistribution: top-p's last kept rank, then the draw in id order.
      uint64_t top_p_rank = kAllRanks;
      if (p.top_p < 1.0f) {
        top_p_rank = RankCut<false>(s, st.max, st.min, weight_span, kAllRanks, weight,
                                    Target{false, static_cast<double>(p.top_p), false}, false, buf, sm)
                         .rank;
      }
      const IdPick pick = IdOrderSelect(
          s,
          [&](int id, float pen) {
            if (top_p_rank != kAllRanks && Rank(OrderedKey(pen), id) > top_p_rank) return 0.0f;
            return kept_weight(pen);
          },
          Target{false, u, true}, sm);
      token = pick.id;
      writer = pick.mine;
    }
  }

  if (writer && threadIdx.x == 0) {
    tokens[row] = token;
    if (logprobs != nullptr) {
      // LogprobsCalculator: log_z = max + log(sum) in double, then float(l - log_z).
      Tally z{};
      for (int b = 0; b < ClusterSize(); ++b) z += InBlock(&sm.ex, b)->exp_sum;
      const double log_z = __dadd_rn(static_cast<double>(st.raw_max), log(ToDouble(z)));
      logprobs[row] = __double2float_rn(__dsub_rn(static_cast<double>(__ldg(row_logits + token)), log_z));
    }
  }
  ClusterSync();  // no block leaves while another may read its shared memory
}

}  // namespace
}  // namespace sampling_detail

absl::Status LaunchSample(const float* logits, int64_t n, int64_t vocab, const DeviceSamplingParams* params,
                          const int32_t* history, const int32_t* history_offsets, int32_t* tokens,
                          float* chosen_logprobs, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  using sampling_detail::kThreads;
  if (n < 0 || n > INT32_MAX) return absl::InvalidArgumentError(absl::StrCat("LaunchSample: n = ", n));
  if (vocab < 1 || vocab > kMaxSampleVocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("LaunchSample: vocab ", vocab, " outside [1, ", kMaxSampleVocab, "]"));
  }
  if (n == 0) return absl::OkStatus();
  if (logits == nullptr || params == nullptr || history == nullptr || history_offsets == nullptr || tokens == nullptr ||
      workspace == nullptr) {
    return absl::InvalidArgumentError("LaunchSample: null pointer");
  }
  if (workspace_bytes < SampleWorkspaceBytes(n, vocab)) {
    return absl::InvalidArgumentError(
        absl::StrCat("LaunchSample: workspace of ", workspace_bytes, " bytes, need ", SampleWorkspaceBytes(n, vocab)));
  }
  ASSIGN_OR_RETURN(const DeviceLimits limits, CurrentDeviceLimits());
  const int sms = limits.sms;
  const int blocks = sampling_detail::ClusterBlocks(n, vocab, sms);
  if (n * blocks > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("LaunchSample: ", n, " rows of ", blocks, " blocks"));
  }
  const int slice = sampling_detail::SliceLength(vocab, blocks);
  const int shared_bytes = sampling_detail::DynamicSharedBytes(slice);
  // Static and dynamic shared memory together beyond 48 KiB need the opt-in.
  RETURN_IF_ERROR(
      EnsureDynamicSharedMemory(reinterpret_cast<const void*>(sampling_detail::SampleKernel), shared_bytes));
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = static_cast<unsigned>(blocks);
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(n * blocks));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = static_cast<size_t>(shared_bytes);
  config.stream = stream;
  config.attrs = &cluster;
  config.numAttrs = 1;
  const bool vec4 = vocab % 4 == 0 && reinterpret_cast<uintptr_t>(logits) % 16 == 0;
  CUDA_RETURN_IF_ERROR(cudaLaunchKernelEx(&config, sampling_detail::SampleKernel, logits, static_cast<int>(vocab),
                                          slice, vec4, params, history, history_offsets, tokens, chosen_logprobs,
                                          static_cast<int32_t*>(workspace)));
  return absl::OkStatus();
}

}  // namespace supra::cuda

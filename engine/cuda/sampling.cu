// The sampling kernel: one block of kThreads threads per row of logits.
//
// A row's steps, each a block-wide pass over the row or less:
//   first pass  over the logits in global memory: max, min and argmax of the
//               penalised logits, the raw max and the logprob normaliser
//               (online), the CPU's validity checks (NaN, +inf, all -inf);
//               rows of at most kMaxCachedVocab logits are copied to shared
//               memory here and every later pass reads them there
//   penalties   the window's distinct ids and counts (global atomics in the
//               workspace row); the penalised logits replace the raw ones in
//               the cache, or, for uncached rows, go to the workspace row
//               with a shared bitmask marking them. The input stays raw.
//   greedy      the argmax (ties to the lowest id): one pass in all
//   top-k       RankCut with weight 1: the rank of the k-th most likely token;
//               k <= kSortCap candidates are then sorted in shared memory and
//               top-p, min-p and the draw walk them as CandidateSet does
//   top-p       RankCut over the weights: the last kept rank
//   draw        IdOrderSelect (no top-k: the CPU's dense draw in id order) or
//               RankCut (top-k beyond kSortCap: most likely first)
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/sampling.h"
#include "engine/cuda/sampling_block.cuh"
#include "engine/cuda/sampling_select.cuh"
#include "engine/sampling/philox.h"

namespace supra::cuda {
namespace sampling_detail {
namespace {

constexpr int kSortBytes = kSortCap * static_cast<int>(sizeof(uint64_t));
static_assert(kMaxSampleVocab / kChunk <= kSortCap, "IdOrderSelect's chunk sums must fit in the sort buffer");

// Rows of at most this many logits are copied to shared memory by the first
// pass (176 KiB with the sort buffer: one block per SM, which the registers
// impose anyway) and every later pass reads them there.
constexpr int64_t kMaxCachedVocab = 45056;

int64_t CachedFloats(int64_t vocab) { return (vocab + kChunk - 1) / kChunk * kChunk; }

// The dynamic shared memory of a launch: the sort buffer (reused for the
// chunk sums of IdOrderSelect), then the row cache or the penalty bitmask.
int DynamicSharedBytes(int64_t vocab) {
  const int64_t tail = vocab <= kMaxCachedVocab ? CachedFloats(vocab) * 4 : (vocab + 31) / 32 * 4;
  return kSortBytes + static_cast<int>((tail + 15) / 16 * 16);
}

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

// Counts the window's ids in counts[] (the workspace row; only the entries
// of window ids are touched). Returns false (for every thread) when the
// window holds an id outside the vocabulary. Ends with a barrier.
__device__ bool CountWindow(const int32_t* window,  // [window_len], int32 ids
                            int window_len, int vocab,
                            int32_t* counts,  // [vocab], int32 workspace
                            Scratch& sh) {
  if (threadIdx.x == 0) sh.flag = 0;
  __syncthreads();
  for (int j = threadIdx.x; j < window_len; j += kThreads) {
    const int32_t t = window[j];
    if (t < 0 || t >= vocab) {
      sh.flag = 1;
    } else {
      counts[t] = 0;
    }
  }
  __syncthreads();
  const bool ok = sh.flag == 0;
  if (ok) {
    for (int j = threadIdx.x; j < window_len; j += kThreads) atomicAdd(&counts[window[j]], 1);
  }
  __syncthreads();
  return ok;
}

// Penalties of a row read from global memory: counts[t] ends up holding the
// penalised logit of each window id t (as float bits), and mask marks them.
__device__ bool PenaliseGlobal(const float* logits,  // [vocab], fp32
                               int vocab, const int32_t* window, int window_len, const DeviceSamplingParams& p,
                               int32_t* counts,  // [vocab], int32 workspace
                               uint32_t* mask,   // shared [ceil(vocab / 32)]
                               Scratch& sh) {
  for (int w = threadIdx.x; w < (vocab + 31) / 32; w += kThreads) mask[w] = 0;
  if (!CountWindow(window, window_len, vocab, counts, sh)) return false;
  for (int j = threadIdx.x; j < window_len; j += kThreads) {
    const int32_t t = window[j];
    const uint32_t bit = 1u << (t & 31);
    if (atomicOr(&mask[t >> 5], bit) & bit) continue;  // another thread owns this id
    const int c = atomicAdd(&counts[t], 0);            // the count, from L2 where the atomics went
    atomicExch(&counts[t], __float_as_int(Penalise(__ldg(logits + t), c, p)));
  }
  __syncthreads();
  return true;
}

// Penalties of a cached row: the penalised logits replace the raw ones in
// the cache. The first thread to take a count owns the id.
__device__ bool PenaliseCache(float* cache,  // shared [vocab], fp32
                              int vocab, const int32_t* window, int window_len, const DeviceSamplingParams& p,
                              int32_t* counts,  // [vocab], int32 workspace
                              Scratch& sh) {
  if (!CountWindow(window, window_len, vocab, counts, sh)) return false;
  for (int j = threadIdx.x; j < window_len; j += kThreads) {
    const int32_t t = window[j];
    const int c = atomicExch(&counts[t], 0);
    if (c > 0) cache[t] = Penalise(cache[t], c, p);
  }
  __syncthreads();
  return true;
}

struct RowStats {
  float max;       // of the penalised logits
  float min;       // smallest finite penalised logit
  float raw_max;   // of the logits as given (logprobs)
  int argmax;      // lowest id holding max
  bool bad;        // a NaN or +inf logit
  double exp_sum;  // sum of exp(raw - raw_max): LogprobsCalculator's normaliser
};

// Per-thread statistics before the block reduction.
struct StatsAccumulator {
  float best = -INFINITY, low = INFINITY, raw_max = -INFINITY;
  int best_id = INT32_MAX;
  bool bad = false;
  float lse_max = -INFINITY;  // running max of the raw logits for the normaliser
  double lse_sum = 0;         // sum of exp(raw - lse_max)

  __device__ void AddPenalised(float pen, int id) {
    bad |= !(pen < INFINITY);
    if (pen > best) {  // a thread sees its ids in increasing order: the first maximum stays
      best = pen;
      best_id = id;
    }
    if (pen > -INFINITY && pen < low) low = pen;
  }
  __device__ void AddRaw(float raw, bool with_exp_sum) {
    bad |= !(raw < INFINITY);
    raw_max = raw > raw_max ? raw : raw_max;
    if (with_exp_sum && raw > -INFINITY && raw < INFINITY) {
      // Online: rescaled when the running max grows. The factor is a float
      // (1e-7 relative, a few times per thread): the logprob moves by about
      // 1e-7, where a double exp here would cost more than the whole pass.
      if (raw > lse_max) {
        lse_sum *= ExpNonPositive(__fsub_rn(lse_max, raw));
        lse_max = raw;
      }
      lse_sum += ExpNonPositive(__fsub_rn(raw, lse_max));
    }
  }
};

__device__ __forceinline__ void MergeArgmax(float& value, int& id, float other_value, int other_id) {
  if (other_value > value || (other_value == value && other_id < id)) {
    value = other_value;
    id = other_id;
  }
}

// Reduces the accumulators of the block into `st` (every thread gets the
// same); the normaliser only if with_exp_sum, raw stats only if with_raw,
// penalised stats only if with_penalised.
__device__ void ReduceStats(StatsAccumulator a, bool with_raw, bool with_penalised, bool with_exp_sum, RowStats& st,
                            Scratch& sh) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    MergeArgmax(a.best, a.best_id, __shfl_xor_sync(kFullMask, a.best, offset),
                __shfl_xor_sync(kFullMask, a.best_id, offset));
    const float other_low = __shfl_xor_sync(kFullMask, a.low, offset);
    a.low = other_low < a.low ? other_low : a.low;
    const float other_raw = __shfl_xor_sync(kFullMask, a.raw_max, offset);
    a.raw_max = other_raw > a.raw_max ? other_raw : a.raw_max;
  }
  const bool bad = __any_sync(kFullMask, a.bad);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sh.f[warp][0] = a.best;
    sh.f[warp][1] = a.low;
    sh.f[warp][2] = a.raw_max;
    sh.i[warp][0] = a.best_id;
    sh.i[warp][1] = bad ? 1 : 0;
  }
  __syncthreads();
  float best = sh.f[0][0], low = sh.f[0][1], raw_max = sh.f[0][2];
  int best_id = sh.i[0][0];
  bool any_bad = sh.i[0][1] != 0;
  for (int w = 1; w < kWarps; ++w) {
    MergeArgmax(best, best_id, sh.f[w][0], sh.i[w][0]);
    low = sh.f[w][1] < low ? sh.f[w][1] : low;
    raw_max = sh.f[w][2] > raw_max ? sh.f[w][2] : raw_max;
    any_bad = any_bad || sh.i[w][1] != 0;
  }
  __syncthreads();
  st.bad = st.bad || any_bad;
  if (with_penalised) {
    st.max = best;
    st.min = low;
    st.argmax = best_id;
  }
  if (with_raw) st.raw_max = raw_max;
  if (with_exp_sum) {
    const double part =
        a.lse_max > -INFINITY ? a.lse_sum * exp(static_cast<double>(a.lse_max) - static_cast<double>(st.raw_max)) : 0.0;
    st.exp_sum = BlockSum1(part, sh);
  }
}

// The first pass, over the row in global memory: raw statistics and the
// logprob normaliser; the penalised statistics too unless penalties will
// change the cache afterwards (with_penalised false); copies the raw row
// into `cache` when given (padded with -inf; published by the barriers).
__device__ RowStats FirstPass(const RowSource& s, float* cache, bool with_penalised, bool with_exp_sum, Scratch& sh) {
  StatsAccumulator a;
  ForEachGlobalQuad(s, [&](int, int i0, const float(&raw)[4], const float(&pen)[4]) {
    if (cache != nullptr) *reinterpret_cast<float4*>(cache + i0) = make_float4(raw[0], raw[1], raw[2], raw[3]);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      a.AddRaw(raw[k], with_exp_sum);
      if (with_penalised) a.AddPenalised(pen[k], i0 + k);
    }
  });
  RowStats st{-INFINITY, INFINITY, -INFINITY, INT32_MAX, false, 0.0};
  ReduceStats(a, /*with_raw=*/true, with_penalised, with_exp_sum, st, sh);
  return st;
}

// The penalised statistics of a cached row whose penalties were applied
// after the first pass.
__device__ void PenalisedStats(const RowSource& s, RowStats& st, Scratch& sh) {
  StatsAccumulator a;
  ForEachQuad(s, [&](int, int i0, const float(&pen)[4]) {
#pragma unroll
    for (int k = 0; k < 4; ++k) a.AddPenalised(pen[k], i0 + k);
  });
  ReduceStats(a, /*with_raw=*/false, /*with_penalised=*/true, /*with_exp_sum=*/false, st, sh);
}

__global__ void __launch_bounds__(kThreads) SampleKernel(const float* __restrict__ logits,  // [n, vocab], fp32
                                                         int vocab, bool vec4,
                                                         const DeviceSamplingParams* __restrict__ params,  // [n]
                                                         const int32_t* __restrict__ history,  // [offsets[n]], int32
                                                         const int32_t* __restrict__ offsets,  // [n + 1], int32
                                                         int32_t* __restrict__ tokens,         // [n], int32
                                                         float* __restrict__ logprobs,         // [n], fp32, or nullptr
                                                         int32_t* __restrict__ workspace) {    // [n, vocab], int32
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint64_t* buf = reinterpret_cast<uint64_t*>(shared_bytes);  // [kSortCap]
  // After the sort buffer: the row cache [CachedFloats(vocab)] or the penalty bitmask [ceil(vocab / 32)].
  unsigned char* tail = shared_bytes + kSortBytes;
  __shared__ Scratch sh;

  const int64_t row = blockIdx.x;
  const DeviceSamplingParams p = params[row];
  RowSource s{logits + row * vocab, nullptr, nullptr, nullptr, vocab, vec4};
  // Greedy reads the row once: nothing to cache.
  float* cache = p.temperature != 0.0f && vocab <= kMaxCachedVocab ? reinterpret_cast<float*>(tail) : nullptr;

  int window_len = 0, window_end = 0;
  if (p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    window_end = offsets[row + 1];
    window_len = min(max(window_end - offsets[row], 0), max(p.penalty_window, 0));
  }
  const int32_t* window = history + (window_end - window_len);
  int32_t* counts = workspace + row * vocab;

  bool valid = true;
  if (window_len > 0 && cache == nullptr) {
    uint32_t* mask = reinterpret_cast<uint32_t*>(tail);
    valid = PenaliseGlobal(s.logits, vocab, window, window_len, p, counts, mask, sh);
    s.penalised = reinterpret_cast<const float*>(counts);
    s.pen_mask = mask;
  }
  RowStats st{};
  if (valid) {
    const bool penalise_cache = window_len > 0 && cache != nullptr;
    st = FirstPass(s, cache, /*with_penalised=*/!penalise_cache, logprobs != nullptr, sh);
    s.cache = cache;
    if (penalise_cache) {
      valid = PenaliseCache(cache, vocab, window, window_len, p, counts, sh);
      if (valid) PenalisedStats(s, st, sh);
    }
  }
  valid = valid && !st.bad && st.max > -INFINITY;
  if (!valid) {
    if (threadIdx.x == 0) {
      tokens[row] = -1;
      if (logprobs != nullptr) logprobs[row] = NAN;
    }
    return;
  }

  int token;
  if (p.temperature == 0.0f) {
    token = st.argmax;
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
    // RankCut's first buckets: by weight, e^-0.5 ... e^-11 of the top token.
    const float weight_offsets[7] = {__fmul_rn(p.temperature, 0.5f), __fmul_rn(p.temperature, 1.0f),
                                     __fmul_rn(p.temperature, 2.0f), __fmul_rn(p.temperature, 3.0f),
                                     __fmul_rn(p.temperature, 4.5f), __fmul_rn(p.temperature, 7.0f),
                                     __fmul_rn(p.temperature, 11.0f)};

    if (p.top_k > 0 && p.top_k < vocab) {
      // Top-k by count: first buckets at 1/64 ... 3/4 of the logit range
      // below the maximum, where the few most likely tokens are.
      const float span = __fsub_rn(st.max, st.min);
      const float count_offsets[7] = {__fmul_rn(span, 0.015625f), __fmul_rn(span, 0.03125f), __fmul_rn(span, 0.0625f),
                                      __fmul_rn(span, 0.125f),    __fmul_rn(span, 0.25f),    __fmul_rn(span, 0.5f),
                                      __fmul_rn(span, 0.75f)};
      auto finite = [](float l) { return l > -INFINITY ? 1.0f : 0.0f; };
      const uint64_t top_k_rank = RankCut(s, st.max, st.min, kAllRanks, finite,
                                          Target{true, static_cast<double>(p.top_k), false}, count_offsets, buf, sh);
      if (p.top_k <= kSortCap) {
        // CandidateSet: the k candidates most likely first, then top-p,
        // min-p and the draw over them.
        const int m = GatherRanks(
            s, [&](int id, float pen) { return pen > -INFINITY && Rank(OrderedKey(pen), id) <= top_k_rank; }, buf, sh);
        SortRanks(buf, m);
        int kept = m;
        if (p.top_p < 1.0f) {
          const Crossing cut = FirstCrossing(
              buf, m, [&](int, uint64_t rank) { return weight(KeyLogit(RankKey(rank))); }, 0.0,
              Target{false, static_cast<double>(p.top_p), false}, sh);
          kept = (cut.first >= 0 ? cut.first : m - 1) + 1;
        }
        const Crossing draw = FirstCrossing(
            buf, kept, [&](int, uint64_t rank) { return kept_weight(KeyLogit(RankKey(rank))); }, 0.0,
            Target{false, u, true}, sh);
        token = RankId(buf[draw.first >= 0 ? draw.first : max(draw.last_positive, 0)]);
      } else {
        // Too many candidates for shared memory: the same walk by RankCut.
        uint64_t top_p_rank = top_k_rank;
        if (p.top_p < 1.0f) {
          top_p_rank = RankCut(s, st.max, st.min, top_k_rank, weight,
                               Target{false, static_cast<double>(p.top_p), false}, weight_offsets, buf, sh);
        }
        token = RankId(
            RankCut(s, st.max, st.min, top_p_rank, kept_weight, Target{false, u, true}, weight_offsets, buf, sh));
      }
    } else {
      // DenseDistribution: top-p's last kept rank, then the draw in id order.
      uint64_t top_p_rank = kAllRanks;
      if (p.top_p < 1.0f) {
        top_p_rank = RankCut(s, st.max, st.min, kAllRanks, weight, Target{false, static_cast<double>(p.top_p), false},
                             weight_offsets, buf, sh);
      }
      token = IdOrderSelect(
          s,
          [&](int id, float pen) -> double {
            if (top_p_rank != kAllRanks && Rank(OrderedKey(pen), id) > top_p_rank) return 0.0;
            return kept_weight(pen);
          },
          Target{false, u, true}, reinterpret_cast<double*>(buf), sh);
    }
  }

  if (threadIdx.x == 0) {
    tokens[row] = token;
    if (logprobs != nullptr) {
      // LogprobsCalculator: log_z = max + log(sum) in double, then float(l - log_z).
      const double log_z = __dadd_rn(static_cast<double>(st.raw_max), log(st.exp_sum));
      logprobs[row] = __double2float_rn(__dsub_rn(static_cast<double>(__ldg(s.logits + token)), log_z));
    }
  }
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
  const int shared_bytes = sampling_detail::DynamicSharedBytes(vocab);
  // Beyond 48 KiB of shared memory a kernel must opt in, once per device.
  if (shared_bytes > 48 * 1024) {
    constexpr int kMaxDevices = 64;
    static std::atomic<int> opted_in[kMaxDevices] = {};
    int device = 0;
    CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    if (device < 0 || device >= kMaxDevices || opted_in[device].load(std::memory_order_relaxed) < shared_bytes) {
      CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(sampling_detail::SampleKernel,
                                                cudaFuncAttributeMaxDynamicSharedMemorySize, shared_bytes));
      if (device >= 0 && device < kMaxDevices) opted_in[device].store(shared_bytes, std::memory_order_relaxed);
    }
  }
  const bool vec4 = vocab % 4 == 0 && reinterpret_cast<uintptr_t>(logits) % 16 == 0;
  sampling_detail::SampleKernel<<<static_cast<unsigned>(n), kThreads, shared_bytes, stream>>>(
      logits, static_cast<int>(vocab), vec4, params, history, history_offsets, tokens, chosen_logprobs,
      static_cast<int32_t*>(workspace));
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

}  // namespace supra::cuda

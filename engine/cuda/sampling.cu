// The sampling kernel: one block of kThreads threads per row of logits.
//
// A row's steps, each a block-wide pass over the row or less:
//   penalties   the window's distinct ids and counts (global atomics in the
//               workspace row), their penalised logits written there and a
//               shared bitmask marking them; the input logits stay raw
//   statistics  max, min and argmax of the penalised logits, raw max, and
//               the validity checks of the CPU (NaN, +inf, all -inf)
//   greedy      the argmax (ties to the lowest id)
//   top-k       RankCut with weight 1: the rank of the k-th most likely token;
//               k <= kSortCap candidates are then sorted in shared memory and
//               top-p, min-p and the draw walk them as CandidateSet does
//   top-p       RankCut over the weights: the last kept rank
//   draw        IdOrderSelect (no top-k: the CPU's dense draw in id order) or
//               RankCut (top-k beyond kSortCap: most likely first)
// Logprobs reuse the first pass after the statistics for the raw log-sum-exp.
#include <cuda_runtime.h>

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

// The shared memory one row needs: the sort buffer (reused for the chunk
// sums of IdOrderSelect: ceil(kMaxSampleVocab / kChunk) doubles fit in it)
// and the penalty bitmask.
static_assert(kMaxSampleVocab / kChunk <= kSortCap, "chunk sums must fit in the sort buffer");
int DynamicSharedBytes(int64_t vocab) {
  const int64_t mask_bytes = (vocab + 31) / 32 * 4;
  return kSortBytes + static_cast<int>((mask_bytes + 15) / 16 * 16);
}

// The CPU's ApplyPenalties for one row, in the workspace row `counts`:
// counts[t] first counts the occurrences of t in the window, then holds the
// penalised logit of t (as float bits), and mask marks those ids. False
// (for every thread) when the window holds an id outside the vocabulary.
__device__ bool ApplyPenalties(const float* logits,   // [vocab], fp32
                               int vocab,
                               const int32_t* window,  // [window_len], int32 ids
                               int window_len, const DeviceSamplingParams& p,
                               int32_t* counts,  // [vocab], int32 workspace
                               uint32_t* mask,   // shared [ceil(vocab / 32)]
                               Scratch& sh) {
  const int words = (vocab + 31) / 32;
  for (int w = threadIdx.x; w < words; w += kThreads) mask[w] = 0;
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
  __syncthreads();
  if (!ok) return false;
  for (int j = threadIdx.x; j < window_len; j += kThreads) atomicAdd(&counts[window[j]], 1);
  __syncthreads();
  constexpr double kMax = 3.40282346638528859811704183484516925e+38;  // FLT_MAX
  for (int j = threadIdx.x; j < window_len; j += kThreads) {
    const int32_t t = window[j];
    const uint32_t bit = 1u << (t & 31);
    if (atomicOr(&mask[t >> 5], bit) & bit) continue;  // another thread owns this id
    const int c = atomicAdd(&counts[t], 0);             // the count, from L2 where the atomics went
    const float l = __ldg(logits + t);
    float penalised = l;  // -inf stays excluded (+inf and NaN are rejected later, as on the CPU)
    if (!isinf(l)) {
      // In double and without contraction, as the CPU: l / r or l · r, minus
      // presence + frequency · c, clamped to the finite floats (NaN stays NaN).
      double v = l > 0 ? __ddiv_rn(static_cast<double>(l), static_cast<double>(p.repetition_penalty))
                       : __dmul_rn(static_cast<double>(l), static_cast<double>(p.repetition_penalty));
      v = __dsub_rn(v, __dadd_rn(static_cast<double>(p.presence_penalty),
                                 __dmul_rn(static_cast<double>(p.frequency_penalty), static_cast<double>(c))));
      v = v < -kMax ? -kMax : (kMax < v ? kMax : v);
      penalised = __double2float_rn(v);
    }
    atomicExch(&counts[t], __float_as_int(penalised));
  }
  __syncthreads();
  return true;
}

struct RowStats {
  float max;      // of the penalised logits
  float min;      // smallest finite penalised logit
  float raw_max;  // of the logits as given (logprobs)
  int argmax;     // lowest id holding max
  bool bad;       // a NaN or +inf logit
};

__device__ RowStats ComputeStats(const RowSource& s, Scratch& sh) {
  float best = -INFINITY, low = INFINITY, raw_max = -INFINITY;
  int best_id = INT32_MAX;
  bool bad = false;
  ForEachQuad(s, [&](int, int i0, const float(&raw)[4], const float(&pen)[4]) {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      bad |= !(raw[k] < INFINITY) || !(pen[k] < INFINITY);
      if (pen[k] > best) {  // a thread sees its ids in increasing order: the first maximum stays
        best = pen[k];
        best_id = i0 + k;
      }
      if (pen[k] > -INFINITY && pen[k] < low) low = pen[k];
      raw_max = raw[k] > raw_max ? raw[k] : raw_max;
    }
  });
  auto merge = [](float& value, int& id, float other_value, int other_id) {
    if (other_value > value || (other_value == value && other_id < id)) {
      value = other_value;
      id = other_id;
    }
  };
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    merge(best, best_id, __shfl_xor_sync(kFullMask, best, offset), __shfl_xor_sync(kFullMask, best_id, offset));
    const float other_low = __shfl_xor_sync(kFullMask, low, offset);
    low = other_low < low ? other_low : low;
    const float other_raw = __shfl_xor_sync(kFullMask, raw_max, offset);
    raw_max = other_raw > raw_max ? other_raw : raw_max;
  }
  bad = __any_sync(kFullMask, bad);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sh.f[warp][0] = best;
    sh.f[warp][1] = low;
    sh.f[warp][2] = raw_max;
    sh.i[warp][0] = best_id;
    sh.i[warp][1] = bad ? 1 : 0;
  }
  __syncthreads();
  RowStats st{sh.f[0][0], sh.f[0][1], sh.f[0][2], sh.i[0][0], sh.i[0][1] != 0};
  for (int w = 1; w < kWarps; ++w) {
    merge(st.max, st.argmax, sh.f[w][0], sh.i[w][0]);
    st.min = sh.f[w][1] < st.min ? sh.f[w][1] : st.min;
    st.raw_max = sh.f[w][2] > st.raw_max ? sh.f[w][2] : st.raw_max;
    st.bad = st.bad || sh.i[w][1] != 0;
  }
  __syncthreads();
  return st;
}

__global__ void __launch_bounds__(kThreads)
    SampleKernel(const float* __restrict__ logits,  // [n, vocab], fp32
                 int vocab, bool vec4,
                 const DeviceSamplingParams* __restrict__ params,  // [n]
                 const int32_t* __restrict__ history,              // [offsets[n]], int32
                 const int32_t* __restrict__ offsets,              // [n + 1], int32
                 int32_t* __restrict__ tokens,                     // [n], int32
                 float* __restrict__ logprobs,                     // [n], fp32, or nullptr
                 int32_t* __restrict__ workspace) {                // [n, vocab], int32
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  uint64_t* buf = reinterpret_cast<uint64_t*>(shared_bytes);              // [kSortCap]
  uint32_t* pen_mask = reinterpret_cast<uint32_t*>(shared_bytes + kSortBytes);  // [ceil(vocab / 32)]
  __shared__ Scratch sh;

  const int64_t row = blockIdx.x;
  const DeviceSamplingParams p = params[row];
  RowSource s{logits + row * vocab, nullptr, nullptr, vocab, vec4};

  bool valid = true;
  if (p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    const int end = offsets[row + 1];
    const int window_len = min(max(end - offsets[row], 0), max(p.penalty_window, 0));
    if (window_len > 0) {
      int32_t* counts = workspace + row * vocab;
      valid = ApplyPenalties(s.logits, vocab, history + (end - window_len), window_len, p, counts, pen_mask, sh);
      s.penalised = reinterpret_cast<const float*>(counts);
      s.pen_mask = pen_mask;
    }
  }
  RowStats st{};
  if (valid) {
    st = ComputeStats(s, sh);
    valid = !st.bad && st.max > -INFINITY;
  }
  if (!valid) {
    if (threadIdx.x == 0) {
      tokens[row] = -1;
      if (logprobs != nullptr) logprobs[row] = NAN;
    }
    return;
  }

  LogprobSum lp{st.raw_max, 0.0, logprobs != nullptr};
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
    const float weight_offsets[7] = {
        __fmul_rn(p.temperature, 0.5f), __fmul_rn(p.temperature, 1.0f), __fmul_rn(p.temperature, 2.0f),
        __fmul_rn(p.temperature, 3.0f), __fmul_rn(p.temperature, 4.5f), __fmul_rn(p.temperature, 7.0f),
        __fmul_rn(p.temperature, 11.0f)};

    if (p.top_k > 0 && p.top_k < vocab) {
      // Top-k by count: first buckets at 1/64 ... 3/4 of the logit range
      // below the maximum, where the few most likely tokens are.
      const float span = __fsub_rn(st.max, st.min);
      const float count_offsets[7] = {__fmul_rn(span, 0.015625f), __fmul_rn(span, 0.03125f),
                                      __fmul_rn(span, 0.0625f),   __fmul_rn(span, 0.125f),
                                      __fmul_rn(span, 0.25f),     __fmul_rn(span, 0.5f),
                                      __fmul_rn(span, 0.75f)};
      auto finite = [](float l) { return l > -INFINITY ? 1.0f : 0.0f; };
      const uint64_t top_k_rank =
          RankCut(s, st.max, st.min, kAllRanks, finite, Target{true, static_cast<double>(p.top_k), false},
                  count_offsets, buf, lp, sh);
      if (p.top_k <= kSortCap) {
        // CandidateSet: the k candidates most likely first, then top-p,
        // min-p and the draw over them.
        const int m = GatherRanks(
            s, [&](int id, float pen) { return pen > -INFINITY && Rank(OrderedKey(pen), id) <= top_k_rank; }, buf,
            sh);
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
                               Target{false, static_cast<double>(p.top_p), false}, weight_offsets, buf, lp, sh);
        }
        token = RankId(
            RankCut(s, st.max, st.min, top_p_rank, kept_weight, Target{false, u, true}, weight_offsets, buf, lp, sh));
      }
    } else {
      // DenseDistribution: top-p's last kept rank, then the draw in id order.
      uint64_t top_p_rank = kAllRanks;
      if (p.top_p < 1.0f) {
        top_p_rank = RankCut(s, st.max, st.min, kAllRanks, weight, Target{false, static_cast<double>(p.top_p), false},
                             weight_offsets, buf, lp, sh);
      }
      token = IdOrderSelect(
          s,
          [&](int id, float, float pen) -> double {
            if (top_p_rank != kAllRanks && Rank(OrderedKey(pen), id) > top_p_rank) return 0.0;
            return kept_weight(pen);
          },
          Target{false, u, true}, reinterpret_cast<double*>(buf), lp, sh);
    }
  }

  if (logprobs != nullptr && lp.pending) {
    double sum = 0;
    ForEachQuad(s, [&](int, int, const float(&raw)[4], const float(&)[4]) { sum += RawExpSum(raw, lp.raw_max); });
    lp.sum = BlockSum1(sum, sh);
  }
  if (threadIdx.x == 0) {
    tokens[row] = token;
    if (logprobs != nullptr) {
      // LogprobsCalculator: log_z = max + log(sum) in double, then float(l - log_z).
      const double log_z = __dadd_rn(static_cast<double>(st.raw_max), log(lp.sum));
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
  if (logits == nullptr || params == nullptr || history == nullptr || history_offsets == nullptr ||
      tokens == nullptr || workspace == nullptr) {
    return absl::InvalidArgumentError("LaunchSample: null pointer");
  }
  if (workspace_bytes < SampleWorkspaceBytes(n, vocab)) {
    return absl::InvalidArgumentError(absl::StrCat("LaunchSample: workspace of ", workspace_bytes, " bytes, need ",
                                                   SampleWorkspaceBytes(n, vocab)));
  }
  const int shared_bytes = sampling_detail::DynamicSharedBytes(vocab);
  // Beyond 48 KiB of shared memory a kernel must opt in (vocabularies above
  // about 110k); the attribute is per device, so it is set on every such call.
  if (shared_bytes > 40 * 1024) {
    CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(sampling_detail::SampleKernel,
                                              cudaFuncAttributeMaxDynamicSharedMemorySize, shared_bytes));
  }
  const bool vec4 = vocab % 4 == 0 && reinterpret_cast<uintptr_t>(logits) % 16 == 0;
  sampling_detail::SampleKernel<<<static_cast<unsigned>(n), kThreads, shared_bytes, stream>>>(
      logits, static_cast<int>(vocab), vec4, params, history, history_offsets, tokens, chosen_logprobs,
      static_cast<int32_t*>(workspace));
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

}  // namespace supra::cuda

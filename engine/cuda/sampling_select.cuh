// The two selections the sampling kernel (sampling.cu) is built from, each a
// few block-wide passes over one row of logits, with no sort of the
// vocabulary:
//   RankCut: walking the tokens most likely first (the CPU's MoreLikely
//     order), the first whose cumulative weight reaches a target. It gives
//     the top-k threshold (weight 1 per token), the top-p threshold, and the
//     draw in most-likely-first order.
//   IdOrderSelect: the same walk in token id order: the CPU's dense draw.
#ifndef SUPRA_ENGINE_CUDA_SAMPLING_SELECT_CUH_
#define SUPRA_ENGINE_CUDA_SAMPLING_SELECT_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/sampling_block.cuh"

namespace supra::cuda::sampling_detail {

// The largest id below `end` whose weight(i, pen) is positive, -1 if
// none: the CPU's fallback when rounding puts the target past the last sum.
template <typename Weight>
__device__ int LastPositiveBefore(const RowSource& s, Weight weight, int end, Scratch& sh) {
  int best = -1;
  ForEachQuad(s, [&](int, int i0, const float(&pen)[4]) {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      if (i0 + k < end && weight(i0 + k, pen[k]) > 0) best = i0 + k;
    }
  });
  return BlockExtreme(best, /*min=*/false, sh);
}

// The first token in id order whose cumulative weight(i, pen) (a
// double, >= 0) reaches `target` (Target::strict: exceeds it), as
// DenseDistribution::Draw: per-chunk sums, the chunk where the target falls,
// then that chunk token by token. Falls back to the last positive token at
// or before that chunk, like the CPU. chunk_sums: shared [ceil(vocab /
// kChunk)] doubles.
template <typename Weight>
__device__ int IdOrderSelect(const RowSource& s, Weight weight, Target target, double* chunk_sums, Scratch& sh) {
  const int lane = threadIdx.x & 31;
  const int chunks = (s.vocab + kChunk - 1) / kChunk;
  ForEachQuad(s, [&](int c, int i0, const float(&pen)[4]) {
    double lane_sum = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) lane_sum += weight(i0 + k, pen[k]);
    const double chunk_sum = WarpSum(lane_sum);
    if (lane == 0) chunk_sums[c] = chunk_sum;
  });
  __syncthreads();

  // Each thread owns `per` consecutive chunks.
  const int per = (chunks + kThreads - 1) / kThreads;
  const int begin = min(static_cast<int>(threadIdx.x) * per, chunks);
  const int end = min(begin + per, chunks);
  double local = 0;
  for (int c = begin; c < end; ++c) local += chunk_sums[c];
  double total;
  const double exclusive = BlockExclusiveScan(local, &total, sh);
  const double goal = target.fixed ? target.value : target.value * total;
  int found = INT32_MAX;
  double run = exclusive;
  for (int c = begin; c < end; ++c) {
    if (Reached(run + chunk_sums[c], goal, target.strict)) {
      found = c;
      break;
    }
    run += chunk_sums[c];
  }
  int chosen = BlockExtreme(found, /*min=*/true, sh);
  if (chosen == INT32_MAX) chosen = chunks - 1;  // rounding kept every sum short of the target
  if (chosen >= begin && chosen < end) {
    double before = exclusive;
    for (int c = begin; c < chosen; ++c) before += chunk_sums[c];
    sh.before = before;
  }
  __syncthreads();
  const double before = sh.before;

  if (threadIdx.x < 32) {
    const int i0 = chosen * kChunk + lane * 4;
    float pen[4];
    LoadPenalised(s, i0, pen);
    double w[4], partial[4];
    double run_lane = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      w[k] = weight(i0 + k, pen[k]);
      run_lane += w[k];
      partial[k] = run_lane;
    }
    double inclusive = run_lane;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const double y = __shfl_up_sync(kFullMask, inclusive, offset);
      if (lane >= offset) inclusive += y;
    }
    double exclusive_lane = __shfl_up_sync(kFullMask, inclusive, 1);
    if (lane == 0) exclusive_lane = 0;
    const double base = before + exclusive_lane;
    int hit = -1, last_positive = -1;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      if (w[k] > 0) {
        if (hit < 0 && Reached(base + partial[k], goal, target.strict)) hit = k;
        last_positive = k;
      }
    }
    const unsigned hits = __ballot_sync(kFullMask, hit >= 0);
    const unsigned positives = __ballot_sync(kFullMask, last_positive >= 0);
    if (hits != 0) {
      if (lane == __ffs(hits) - 1) sh.result = i0 + hit;
    } else if (positives != 0) {
      if (lane == 31 - __clz(positives)) sh.result = i0 + last_positive;
    } else if (lane == 0) {
      sh.result = -1;
    }
  }
  __syncthreads();
  int result = sh.result;
  __syncthreads();
  if (result < 0) result = LastPositiveBefore(s, weight, chosen * kChunk, sh);
  return result;
}

// RankCut: among the members (tokens with weight(pen) > 0, a float, and a
// rank at or before `limit`), in rank order (most likely first), the first
// whose cumulative weight reaches the target; returns its rank. When no
// member reaches it (rounding, or fewer than k tokens for top-k), the last
// member, as the CPU keeps everything then.
//
// Each level is one pass that sums the weights of the members in eight
// buckets of their logit's ordered key, picks the bucket where the target
// falls, and narrows to it. A bucket of at most kSortCap members is sorted in
// shared memory and walked exactly; a bucket of one logit value (a tie) is
// resolved by id order. Level 0's buckets are set by `level0_offsets` (the
// logits max_logit - offset); later levels split the key range in eight.
// Typical rows finish after one or two levels.
template <typename Weight>
__device__ uint64_t RankCut(const RowSource& s, float max_logit, float min_logit, uint64_t limit, Weight weight,
                            Target target, const float (&level0_offsets)[7], uint64_t* buf, Scratch& sh) {
  uint32_t hi = OrderedKey(max_logit);
  uint32_t lo = OrderedKey(min_logit);
  if (limit != kAllRanks) lo = max(lo, RankKey(limit));
  const bool limited = limit != kAllRanks;
  auto member_in = [&](uint32_t key, int id, uint32_t range_lo, uint32_t range_hi) {
    return key >= range_lo && key <= range_hi && (!limited || Rank(key, id) <= limit);
  };
  double before = 0;  // weight of the members ranked before the range
  double goal = target.value;
  bool last = false;  // no bucket reached the target: take the last member
  for (int level = 0;; ++level) {
    // Bucket j holds the keys in (t[j + 1], t[j]]; lo >= OrderedKey(-FLT_MAX) > 0, so lo - 1 is safe.
    uint32_t t[9];
    t[0] = hi;
    t[8] = lo - 1;
    if (level == 0) {
#pragma unroll
      for (int j = 1; j < 8; ++j) {
        const uint32_t key = OrderedKey(__fsub_rn(max_logit, level0_offsets[j - 1]));
        t[j] = min(max(key, lo - 1), t[j - 1]);
      }
    } else {
      const uint64_t width = uint64_t{hi} - lo + 1;
#pragma unroll
      for (int j = 1; j < 8; ++j) t[j] = hi - static_cast<uint32_t>((width * j + 7) / 8);
    }
    // above[j], count[j]: the members in buckets 0..j.
    double above[8] = {};
    int count[8] = {};
    const uint32_t range_lo = lo, range_hi = hi;
    ForEachQuad(s, [&](int, int i0, const float(&pen)[4]) {
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        // The range test first: after level 0 it drops most tokens before their weight is computed.
        const uint32_t key = OrderedKey(pen[k]);
        if (member_in(key, i0 + k, range_lo, range_hi)) {
          const float w = weight(pen[k]);
          if (w > 0.0f) {
#pragma unroll
            for (int j = 0; j < 7; ++j) {
              if (key > t[j + 1]) {
                above[j] += w;
                ++count[j];
              }
            }
            above[7] += w;
            ++count[7];
          }
        }
      }
    });
    BlockSum(above, count, sh);
    if (level == 0 && !target.fixed) goal = target.value * above[7];

    // Static indices only below, so that above, count and t stay in registers.
    int chosen = -1;
    if (!last) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        if (chosen < 0 && Reached(before + above[j], goal, target.strict)) chosen = j;
      }
    }
    if (chosen < 0) {
      last = true;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        if (count[j] > (j > 0 ? count[j - 1] : 0)) chosen = j;  // the last non-empty bucket
      }
      if (chosen < 0) return limit;  // no member at all: only for an invalid row
    }
    int members = 0;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (j == chosen) {
        members = count[j] - (j > 0 ? count[j - 1] : 0);
        before += j > 0 ? above[j - 1] : 0.0;
        hi = t[j];
        lo = t[j + 1] + 1;
      }
    }

    if (members <= kSortCap) {
      const uint32_t blo = lo, bhi = hi;
      const int m = GatherRanks(
          s, [&](int id, float pen) { return member_in(OrderedKey(pen), id, blo, bhi) && weight(pen) > 0.0f; }, buf,
          sh);
      SortRanks(buf, m);
      int pick = m - 1;
      if (!last) {
        const Crossing crossing = FirstCrossing(
            buf, m, [&](int, uint64_t rank) { return weight(KeyLogit(RankKey(rank))); }, before,
            Target{true, goal, target.strict}, sh);
        if (crossing.first >= 0) pick = crossing.first;
      }
      const uint64_t rank = buf[max(pick, 0)];
      __syncthreads();  // buf is reused by the caller
      return rank;
    }
    if (lo == hi) {
      // A tie of `members` tokens of one logit, each weighing w, in id order:
      // the first j with before + (j + 1)·w reaching the goal.
      const uint32_t key = lo;
      const double w = weight(KeyLogit(key));
      int64_t j = members - 1;
      if (!last) {
        const double q = (goal - before) / w;
        const double guess = target.strict ? floor(q) : ceil(q) - 1;
        j = !(guess >= 0) ? 0 : (guess >= members - 1 ? members - 1 : static_cast<int64_t>(guess));
        while (j > 0 && Reached(before + static_cast<double>(j) * w, goal, target.strict)) --j;
        while (j < members - 1 && !Reached(before + static_cast<double>(j + 1) * w, goal, target.strict)) ++j;
      }
      const int id = IdOrderSelect(
          s,
          [&](int i, float pen) {
            return (OrderedKey(pen) == key && weight(pen) > 0.0f && (!limited || Rank(key, i) <= limit)) ? 1.0 : 0.0;
          },
          Target{true, static_cast<double>(j), true}, reinterpret_cast<double*>(buf), sh);
      return Rank(key, id);
    }
  }
}

}  // namespace supra::cuda::sampling_detail

#endif  // SUPRA_ENGINE_CUDA_SAMPLING_SELECT_CUH_

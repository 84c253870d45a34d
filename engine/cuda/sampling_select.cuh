// The selections the sampling kernel (sampling.cu) is built from, each a few
// passes of a cluster of blocks over one row of logits, every block over its
// slice in shared memory, with no sort of the vocabulary:
//   RankCut: walking the tokens most likely first (the CPU's MoreLikely
//     order), the first whose cumulative weight reaches a target. It gives
//     the top-k threshold (weight 1 per token), the top-p threshold, and the
//     draw in most-likely-first order.
//   IdOrderSelect: the same walk in token id order: the CPU's dense draw.
// Every sum is a Tally (exact), so the blocks agree on every decision and the
// result does not depend on the number of blocks. Each function is called by
// every thread of every block of the cluster with cluster-uniform arguments;
// a shared variable that other blocks read is written again only after a
// cluster barrier that follows their reads.
#ifndef SUPRA_ENGINE_CUDA_SAMPLING_SELECT_CUH_
#define SUPRA_ENGINE_CUDA_SAMPLING_SELECT_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/sampling_block.cuh"

namespace supra::cuda::sampling_detail {

// Statistics of a row, a slice or a thread's tokens.
struct Stats {
  float max;      // of the penalised logits
  float min;      // smallest finite penalised logit
  float raw_max;  // of the logits as given
  int argmax;     // lowest id holding max
  int bad;        // a NaN or +inf logit
};

// A block's values that the other blocks of its cluster read.
struct Exchange {
  Stats stats;    // the slice's
  Tally exp_sum;  // the slice's share of the logprob normaliser
  Tally total;    // IdOrderSelect: the slice's weight
  int count;      // ClusterGatherToFirst: the slice's members
  int result;     // ClusterBroadcast's value
};

// One level of RankCut's per-block histogram of member weights.
struct Histogram {
  unsigned long long whole[kBins];
  unsigned long long part[kBins];
  unsigned int count[kBins];
};

// The kernel's static shared memory.
struct Shared {
  Scratch sh;
  Exchange ex;
  Stats warp_stats[kWarps];
  Stats stats;              // the row's
  Histogram hist[2];        // alternate levels, so that a level's is not rewritten while read
  Tally chunk[kMaxChunks];  // IdOrderSelect's chunk sums
  Tally before;             // a chosen bin's or chunk's exclusive prefix
  Goal goal;
  int members;  // in the chosen bin
  int through;  // in the chosen bin and those before it
  int owner;    // IdOrderSelect: the block where the goal is reached, -1 if none
  int reached;  // IdOrderSelect: the goal is reached (else the fallback: last positive)
  int count;    // gather position counter
  int result;
};

// Adds `w` to bin `bin` (< 0: nothing) of the histogram: a warp collective.
// Lanes of one bin add up their tallies first (in log2(lanes) steps), so only
// one lane per bin does the 64-bit atomics (compare-and-swap loops).
__device__ __forceinline__ void AddToHistogram(Histogram& h, int bin, Tally w) {
  const int lane = threadIdx.x & 31;
  const unsigned group = __match_any_sync(kFullMask, bin);
  const bool leader = (group & ((1u << lane) - 1u)) == 0;
  unsigned above = group & (0xfffffffeu << lane);  // the group's higher lanes not yet added
  int position = __popc(group & ((1u << lane) - 1u));
  // Step s: the lanes at even positions add the next remaining lane's sum,
  // then the odd ones drop out; the leader ends with the group's sum.
  while (__any_sync(kFullMask, above != 0)) {
    const int next = __ffs(above) - 1;
    const unsigned long long whole = __shfl_sync(kFullMask, w.whole, next & 31);
    const unsigned long long part = __shfl_sync(kFullMask, w.part, next & 31);
    if (next >= 0) {
      w.whole += whole;
      w.part += part;
    }
    above &= __ballot_sync(kFullMask, (position & 1) == 0);
    position >>= 1;
  }
  if (bin >= 0 && leader) {
    atomicAdd(&h.whole[bin], w.whole);
    atomicAdd(&h.part[bin], w.part);
    atomicAdd(&h.count[bin], static_cast<unsigned>(__popc(group)));
  }
}

// Writes the rank of every token of the slice for which member(key, id, pen)
// holds to buf[offset + position] of block `to` (-1: of every block), the
// position counted from 0 by the Shared counter, which must be 0 and
// published by a barrier. The caller knows the counts: offset + this
// block's count <= kSortCap.
template <typename Member>
__device__ void GatherRanks(const Slice& s, Member member, int offset, int to, uint64_t* buf, Shared& sm) {
  const int lane = threadIdx.x & 31;
  const int first = to < 0 ? 0 : to, last = to < 0 ? ClusterSize() - 1 : to;
  ForEachQuad(s, [&](int, int i0, const float(&pen)[4]) {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint32_t key = OrderedKey(pen[k]);
      const bool is = member(key, i0 + k, pen[k]);
      const unsigned mask = __ballot_sync(kFullMask, is);
      if (mask == 0) continue;
      int base = 0;
      if (lane == 0) base = atomicAdd(&sm.count, __popc(mask));
      base = __shfl_sync(kFullMask, base, 0);
      const int pos = offset + base + __popc(mask & ((1u << lane) - 1u));
      if (is && pos < kSortCap) {
        for (int b = first; b <= last; ++b) InBlock(buf, b)[pos] = Rank(key, i0 + k);
      }
    }
  });
}

// Gathers the members (member(key, id, pen)) of every slice into block 0's
// buf[0..m), in no particular order; returns m (<= kSortCap: the caller
// knows) in every block. Two cluster barriers.
template <typename Member>
__device__ int ClusterGatherToFirst(const Slice& s, Member member, uint64_t* buf, Shared& sm) {
  Tally local{};
  ForEachQuad(s, [&](int, int i0, const float(&pen)[4]) {
#pragma unroll
    for (int k = 0; k < 4; ++k) local.count += member(OrderedKey(pen[k]), i0 + k, pen[k]) ? 1 : 0;
  });
  local = BlockSum(local, sm.sh);
  if (threadIdx.x == 0) {
    sm.ex.count = static_cast<int>(local.count);
    sm.count = 0;
  }
  ClusterSync();
  const int me = ClusterRank(), blocks = ClusterSize();
  int offset = 0, m = 0;
  for (int b = 0; b < blocks; ++b) {
    const int c = InBlock(&sm.ex, b)->count;
    offset += b < me ? c : 0;
    m += c;
  }
  GatherRanks(s, member, offset, 0, buf, sm);
  ClusterSync();
  return m;
}

// Every block gets the value of the one block where `mine` holds.
__device__ __forceinline__ int ClusterBroadcast(int value, bool mine, Shared& sm) {
  if (mine && threadIdx.x == 0) {
    for (int b = 0; b < ClusterSize(); ++b) InBlock(&sm.ex, b)->result = value;
  }
  ClusterSync();
  return sm.ex.result;
}

struct IdPick {
  bool mine;  // this block found the token (exactly one block does)
  int id;     // the token, in that block
};

// The first token in id order whose cumulative weight(id, pen) (a float,
// >= 0) exceeds the target (strict; the CPU's DenseDistribution::Draw):
// per-chunk sums of every slice, the block and the chunk where the target
// falls, then that chunk token by token. When rounding of the target puts it
// at or past the total, the last positive token, as the CPU. One cluster
// barrier.
template <typename Weight>
__device__ IdPick IdOrderSelect(const Slice& s, Weight weight, Target target, Shared& sm) {
  const int lane = threadIdx.x & 31;
  const int chunks = s.len / kChunk;
  ForEachQuad(s, [&](int c, int i0, const float(&pen)[4]) {
    Tally t{};
#pragma unroll
    for (int k = 0; k < 4; ++k) t += ToTally(weight(i0 + k, pen[k]));
    t = WarpSum(t);
    if (lane == 0) sm.chunk[c] = t;
  });
  __syncthreads();
  const Tally mine = static_cast<int>(threadIdx.x) < chunks ? sm.chunk[threadIdx.x] : Tally{};
  Tally slice_total;
  const Tally exclusive = BlockExclusiveScan(mine, &slice_total, sm.sh);
  if (threadIdx.x == 0) sm.ex.total = slice_total;
  ClusterSync();

  // Warp 0, lane b: block b's total; where the cumulative sum over the blocks
  // reaches the goal.
  const int me = ClusterRank();
  if (threadIdx.x < 32) {
    const Tally t = lane < ClusterSize() ? InBlock(&sm.ex, lane)->total : Tally{};
    const Tally inclusive = WarpInclusiveScan(t);
    const Tally total = Shuffle(inclusive, 31);
    const Goal goal = MakeGoal(target.fixed ? target.value : target.value * ToDouble(total), /*strict=*/true);
    const unsigned reached = __ballot_sync(kFullMask, t.count > 0 && Reached(inclusive, goal));
    const unsigned positive = __ballot_sync(kFullMask, t.count > 0);
    const Tally before = ShuffleUp(inclusive, 1);
    if (lane == me) sm.before = me == 0 ? Tally{} : before;
    if (lane == 0) {
      sm.goal = goal;
      sm.reached = reached != 0;
      sm.owner = reached != 0 ? __ffs(reached) - 1 : (positive != 0 ? 31 - __clz(positive) : -1);
    }
  }
  __syncthreads();
  const Goal goal = sm.goal;
  const Tally before = sm.before;
  const bool reached = sm.reached != 0;
  const bool owner = sm.owner == me;
  __syncthreads();
  if (!owner) return {false, -1};
  if (!reached) {
    int last = -1;
    ForEachQuad(s, [&](int, int i0, const float(&pen)[4]) {
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if (weight(i0 + k, pen[k]) > 0.0f) last = i0 + k;
      }
    });
    return {true, BlockExtreme(last, /*min=*/false, sm.sh)};
  }

  // The first chunk whose cumulative weight reaches the goal (there is one).
  const int chunk = BlockExtreme(
      mine.count > 0 && Reached(before + exclusive + mine, goal) ? static_cast<int>(threadIdx.x) : INT32_MAX,
      /*min=*/true, sm.sh);
  if (static_cast<int>(threadIdx.x) == chunk) sm.before = before + exclusive;
  __syncthreads();
  if (threadIdx.x < 32 && chunk < chunks) {
    const int i = chunk * kChunk + lane * 4;
    const float4 v = *reinterpret_cast<const float4*>(s.cache + i);
    const float pen[4] = {v.x, v.y, v.z, v.w};
    float w[4];
    Tally lane_sum{};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      w[k] = weight(s.base + i + k, pen[k]);
      lane_sum += ToTally(w[k]);
    }
    const Tally inclusive = WarpInclusiveScan(lane_sum);
    Tally cumulative = sm.before + inclusive;
    cumulative.whole -= lane_sum.whole;  // exclusive of this lane: exact
    cumulative.part -= lane_sum.part;
    int hit = -1, last_positive = -1;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      if (w[k] > 0.0f) {
        cumulative += ToTally(w[k]);
        if (hit < 0 && Reached(cumulative, goal)) hit = k;
        last_positive = k;
      }
    }
    const unsigned hits = __ballot_sync(kFullMask, hit >= 0);
    const unsigned positives = __ballot_sync(kFullMask, last_positive >= 0);
    if (hits != 0) {
      if (lane == __ffs(hits) - 1) sm.result = s.base + i + hit;
    } else if (lane == 31 - __clz(positives)) {  // unreachable with exact sums; the CPU's fallback
      sm.result = s.base + i + last_positive;
    }
  }
  __syncthreads();
  const int id = sm.result;
  __syncthreads();
  return {true, id};
}

// What RankCut returns.
struct Cut {
  uint64_t rank;  // of the token where the walk stops
  int prefix;     // >= 0: buf[0..prefix] holds every member ranked <= rank, most likely first (in every block)
};

// RankCut: among the members (tokens with weight(pen) > 0, a float, and a
// rank at or before `limit`), in rank order (most likely first), the first
// whose cumulative weight reaches the target; returns its rank. When no
// member reaches it (rounding, or fewer than k tokens for top-k), the last
// member, as the CPU keeps everything then. kCount: every member weighs 1.
//
// Each level is one pass that adds the members' tallies into kBins bins of
// their logit, the cluster's histogram (the blocks' summed), the bin where
// the target falls, and a narrowing to it. Level 0's bins split
// [max_logit - span, max_logit] evenly by value (the lowest bin also takes
// everything below); later levels split the key range evenly. A bin of at
// most kSortCap members is gathered into every block, sorted and walked
// exactly (with want_prefix, at level 0, the chosen bin with every bin
// before it, when they hold at most kSortCap members: then Cut::prefix); a
// bin of one logit value (a tie) is resolved by id order. Two cluster
// barriers per level; typical rows finish after one.
template <bool kCount, typename Weight>
__device__ Cut RankCut(const Slice& s, float max_logit, float min_logit, float span, uint64_t limit, Weight weight,
                       Target target, bool want_prefix, uint64_t* buf, Shared& sm) {
  const int me = ClusterRank(), blocks = ClusterSize();
  const int t = threadIdx.x;
  uint32_t hi = OrderedKey(max_logit);
  uint32_t lo = OrderedKey(min_logit);
  const bool limited = limit != kAllRanks;
  if (limited) lo = max(lo, RankKey(limit));
  // A member's weight, 0 for the rest: the one test every pass applies.
  auto member_weight = [&](uint32_t key, int id, float pen, uint32_t range_lo, uint32_t range_hi) {
    if (key < range_lo || key > range_hi || (limited && Rank(key, id) > limit)) return 0.0f;
    return kCount ? (pen > -INFINITY ? 1.0f : 0.0f) : weight(pen);
  };
  float scale = static_cast<float>(kBins) / span;
  if (!(scale > 0.0f && scale < INFINITY)) scale = 0.0f;  // one bin; the later levels split by key
  // Level 0's bin of a key: non-increasing in the key (a chain of rounded
  // monotone operations), so a bin is a key range.
  auto value_bin = [=](uint32_t key) {
    if (scale == 0.0f) return 0;
    const float x = __fmul_rn(__fsub_rn(max_logit, KeyLogit(key)), scale);
    return static_cast<int>(fminf(floorf(x), static_cast<float>(kBins - 1)));
  };
  Tally before{};  // weight of the members ranked before the range
  double goal_value = target.value;
  bool last = false;  // no bin reached the target: take the last member
  for (int level = 0;; ++level) {
    Histogram& h = sm.hist[level & 1];
    // Later levels: bins of 2^shift keys, (hi - key) >> shift < kBins.
    const uint64_t width = uint64_t{hi} - lo + 1;
    const int shift = width <= kBins ? 0 : 64 - __clzll(static_cast<long long>(width - 1)) - 8;
    const uint32_t range_lo = lo, range_hi = hi;
    auto bin_of = [&](uint32_t key) {
      return level == 0 ? value_bin(key) : static_cast<int>((range_hi - key) >> shift);
    };
    for (int b = t; b < kBins; b += kThreads) {
      h.whole[b] = 0;
      h.part[b] = 0;
      h.count[b] = 0;
    }
    if (t == 0) sm.count = 0;
    __syncthreads();
    ForEachQuad(s, [&](int, int i0, const float(&pen)[4]) {
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint32_t key = OrderedKey(pen[k]);
        const float w = member_weight(key, i0 + k, pen[k], range_lo, range_hi);
        const int bin = w > 0.0f ? bin_of(key) : -1;
        if (kCount) {
          if (bin >= 0) atomicAdd(&h.count[bin], 1u);
        } else {
          AddToHistogram(h, bin, ToTally(w));
        }
      }
    });
    ClusterSync();

    // Thread t < kBins: bin t of the cluster, and of each block (for the gather).
    int block_count[kMaxCluster];
    Tally bin{};
#pragma unroll
    for (int b = 0; b < kMaxCluster; ++b) {
      block_count[b] = 0;
      if (t < kBins && b < blocks) {
        const Histogram& r = *InBlock(&h, b);
        block_count[b] = static_cast<int>(r.count[t]);
        bin.count += r.count[t];
        if (!kCount) {
          bin.whole += r.whole[t];
          bin.part += r.part[t];
        }
      }
    }
    if (kCount) bin.whole = bin.count << kPartBits;
    Tally total;
    const Tally exclusive = BlockExclusiveScan(bin, &total, sm.sh);
    if (level == 0 && !target.fixed) goal_value = target.value * ToDouble(total);
    const Goal goal = MakeGoal(goal_value, target.strict);
    int chosen = INT32_MAX;
    if (!last && bin.count > 0 && Reached(before + exclusive + bin, goal)) chosen = t;
    chosen = BlockExtreme(chosen, /*min=*/true, sm.sh);
    if (chosen == INT32_MAX) {
      last = true;
      chosen = BlockExtreme(bin.count > 0 ? t : -1, /*min=*/false, sm.sh);
      if (chosen < 0) return {limit, -1};  // no member at all: only for an invalid row
    }
    if (t == chosen) {
      sm.before = exclusive;
      sm.members = static_cast<int>(bin.count);
      sm.through = static_cast<int>(exclusive.count + bin.count);
    }
    __syncthreads();
    const Tally bin_before = sm.before;
    const int members = sm.members;
    const bool prefix = want_prefix && level == 0 && sm.through <= kSortCap;

    if (prefix || members <= kSortCap) {
      // Gather the chosen bin (or every bin through it) into every block.
#pragma unroll
      for (int b = 0; b < kMaxCluster; ++b) {
        if (!(t < kBins && (prefix ? t <= chosen : t == chosen))) block_count[b] = 0;
      }
      BlockSumInts(block_count, sm.sh);
      int offset = 0, m = 0;
#pragma unroll
      for (int b = 0; b < kMaxCluster; ++b) {
        offset += b < me ? block_count[b] : 0;
        m += block_count[b];
      }
      GatherRanks(
          s,
          [&](uint32_t key, int id, float pen) {  // the histogram's members of the chosen bins
            if (key < range_lo || key > range_hi) return false;
            const int b = bin_of(key);
            return (prefix ? b <= chosen : b == chosen) && member_weight(key, id, pen, range_lo, range_hi) > 0.0f;
          },
          offset, -1, buf, sm);
      ClusterSync();
      SortRanks(buf, m);
      int pick = m - 1;
      if (!last) {
        const Crossing crossing = FirstCrossing(
            buf, m, [&](uint64_t rank) { return kCount ? 1.0f : weight(KeyLogit(RankKey(rank))); },
            prefix ? Tally{} : before + bin_before, Target{true, goal_value, target.strict}, sm.sh);
        if (crossing.first >= 0) pick = crossing.first;
      }
      return {buf[max(pick, 0)], prefix ? pick : -1};
    }

    // Too many members: narrow the range to the chosen bin.
    before += bin_before;
    if (level == 0) {
      // The bin's key range, by bisection over the keys (value_bin is monotone).
      uint32_t a = lo, z = hi;  // the lowest key with value_bin <= chosen
      while (a < z) {
        const uint32_t mid = a + (z - a) / 2;
        if (value_bin(mid) <= chosen) {
          z = mid;
        } else {
          a = mid + 1;
        }
      }
      const uint32_t new_lo = a;
      a = lo;
      z = hi;  // the highest key with value_bin >= chosen
      while (a < z) {
        const uint32_t mid = a + (z - a + 1) / 2;
        if (value_bin(mid) >= chosen) {
          a = mid;
        } else {
          z = mid - 1;
        }
      }
      lo = new_lo;
      hi = a;
    } else {
      const int64_t top = static_cast<int64_t>(hi) - (static_cast<int64_t>(chosen) << shift);
      lo = static_cast<uint32_t>(max(static_cast<int64_t>(lo), top - (int64_t{1} << shift) + 1));
      hi = static_cast<uint32_t>(top);
    }
    if (lo == hi) {
      // A tie of `members` tokens of one logit, each weighing w, in id order:
      // the first j with before + (j + 1)·w reaching the goal.
      const uint32_t key = lo;
      const Tally w = ToTally(kCount ? 1.0f : weight(KeyLogit(key)));
      int j = members - 1;
      if (!last) {
        int a = 0;
        while (a < j) {
          const int mid = (a + j) / 2;
          if (Reached(before + Times(w, static_cast<unsigned long long>(mid) + 1), goal)) {
            j = mid;
          } else {
            a = mid + 1;
          }
        }
      }
      const IdPick pick = IdOrderSelect(
          s,
          [&](int id, float pen) {
            return OrderedKey(pen) == key && member_weight(key, id, pen, key, key) > 0.0f ? 1.0f : 0.0f;
          },
          Target{true, static_cast<double>(j), true}, sm);
      return {Rank(key, ClusterBroadcast(pick.id, pick.mine, sm)), -1};
    }
  }
}

}  // namespace supra::cuda::sampling_detail

#endif  // SUPRA_ENGINE_CUDA_SAMPLING_SELECT_CUH_

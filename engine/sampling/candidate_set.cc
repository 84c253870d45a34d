#include "engine/sampling/candidate_set.h"

#include <algorithm>
#include <limits>

#include "engine/sampling/fast_exp.h"

namespace supra::sampling_internal {
namespace {

// Up to this k a heap of the k best seen so far selects in one pass with,
// for most tokens, a single comparison against the heap's worst; beyond it
// nth_element's linear worst case wins.
constexpr int32_t kMaxHeapK = 256;

}  // namespace

void CandidateSet::SelectTopK(absl::Span<const float> logits, int32_t k, float max_logit, float inv_temperature) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  candidates_.clear();
  const auto n = static_cast<int32_t>(logits.size());
  if (k <= kMaxHeapK) {
    // A heap ordered by MoreLikely keeps its least likely member at the front.
    // Once it is full, a chunk whose maximum does not beat the front is
    // skipped after one vectorized pass: ids only grow, so a later token
    // never wins a tie. For k << vocab nearly every chunk is skipped.
    constexpr int32_t kChunk = 64;
    const float* l = logits.data();
    for (int32_t begin = 0; begin < n; begin += kChunk) {
      const int32_t end = std::min(n, begin + kChunk);
      if (static_cast<int32_t>(candidates_.size()) == k) {
        float chunk_max = kNegInf;
#pragma omp simd reduction(max : chunk_max)
        for (int32_t i = begin; i < end; ++i) chunk_max = l[i] > chunk_max ? l[i] : chunk_max;
        if (chunk_max <= candidates_.front().logit) continue;
      }
      for (int32_t i = begin; i < end; ++i) {
        if (l[i] == kNegInf) continue;
        const Candidate c{l[i], 0.0f, i};
        if (static_cast<int32_t>(candidates_.size()) < k) {
          candidates_.push_back(c);
          std::push_heap(candidates_.begin(), candidates_.end(), MoreLikely);
        } else if (MoreLikely(c, candidates_.front())) {
          std::pop_heap(candidates_.begin(), candidates_.end(), MoreLikely);
          candidates_.back() = c;
          std::push_heap(candidates_.begin(), candidates_.end(), MoreLikely);
        }
      }
    }
  } else {
    for (int32_t i = 0; i < n; ++i) {
      if (logits[i] != kNegInf) candidates_.push_back({logits[i], 0.0f, i});
    }
    if (static_cast<int32_t>(candidates_.size()) > k) {
      std::nth_element(candidates_.begin(), candidates_.begin() + k, candidates_.end(), MoreLikely);
      candidates_.resize(k);
    }
  }
  for (Candidate& c : candidates_) c.weight = ExpNonPositive((c.logit - max_logit) * inv_temperature);
}

void CandidateSet::Sort() { std::sort(candidates_.begin(), candidates_.end(), MoreLikely); }

void CandidateSet::KeepTopP(double top_p) {
  Sort();
  double total = 0;
  for (const Candidate& c : candidates_) total += c.weight;
  const double target = top_p * total;
  double cumulative = 0;
  size_t kept = 0;
  while (kept < candidates_.size() && cumulative < target) cumulative += candidates_[kept++].weight;
  candidates_.resize(std::max<size_t>(kept, 1));
}

void CandidateSet::DropBelow(float min_weight) {
  candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(),
                                   [min_weight](const Candidate& c) { return c.weight < min_weight; }),
                    candidates_.end());
}

int32_t CandidateSet::Draw(double u) const {
  double total = 0;
  for (const Candidate& c : candidates_) total += c.weight;
  const double target = u * total;
  double cumulative = 0;
  int32_t last_positive = candidates_.front().id;
  for (const Candidate& c : candidates_) {
    if (c.weight <= 0) continue;
    cumulative += c.weight;
    last_positive = c.id;
    if (target < cumulative) return c.id;
  }
  return last_positive;  // rounding put the target past the last sum
}

}  // namespace supra::sampling_internal

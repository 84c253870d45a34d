// A token still in the running, and the order every cut (top-k, top-p) uses.
#ifndef SUPRA_ENGINE_SAMPLING_CANDIDATE_H_
#define SUPRA_ENGINE_SAMPLING_CANDIDATE_H_

#include <cstdint>

namespace supra::sampling_internal {

struct Candidate {
  float logit;   // penalised, before temperature
  float weight;  // exp((logit - max) / T), once computed
  int32_t id;
};

// Most likely first, ties to the lowest id, so that cuts are deterministic.
// A function object rather than a function, so that std::sort and the heap
// algorithms inline it.
struct MoreLikelyOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};
inline constexpr MoreLikelyOrder MoreLikely;

}  // namespace supra::sampling_internal

#endif  // SUPRA_ENGINE_SAMPLING_CANDIDATE_H_

// The sampler's distribution over the whole vocabulary, kept dense (one
// weight per token id) for the common case without top-k: every step is a
// linear pass, and top-p needs no sort of the vocabulary.
#ifndef SUPRA_ENGINE_SAMPLING_DENSE_DISTRIBUTION_H_
#define SUPRA_ENGINE_SAMPLING_DENSE_DISTRIBUTION_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "engine/sampling/candidate.h"

namespace supra::sampling_internal {

class DenseDistribution {
 public:
  // weights[i] = exp((logits[i] - max_logit) * inv_temperature): the most
  // likely token weighs exactly 1, a -inf logit 0. max_logit is the maximum
  // of `logits` (finite), inv_temperature > 0.
  void Build(absl::Span<const float> logits, float max_logit, float inv_temperature);

  // Top-p: keeps the smallest set of most likely tokens (ties to the lowest
  // id) whose weight reaches top_p of the total, zeroing the others. Tokens
  // are binned by log-weight in one pass; only the bin where the cut falls is
  // sorted. `logits` etc. as given to Build.
  void KeepTopP(absl::Span<const float> logits, float max_logit, float inv_temperature, double top_p);

  // Min-p: zeroes the weights below `min_weight` (min_p times the top weight 1).
  void DropBelow(float min_weight);

  // Inverse CDF at u * total weight, u in [0, 1), scanning token ids in order.
  int32_t Draw(double u) const;

 private:
  // Recomputes block_sums_ after weights were zeroed.
  void SumBlocks();

  std::vector<float> weights_;       // [vocab]
  std::vector<double> block_sums_;   // [ceil(vocab / kBlock)], sum of weights_ per block
  std::vector<uint8_t> bins_;        // [vocab], scratch: each token's top-p bin
  std::vector<Candidate> boundary_;  // scratch: the tokens of the bin the top-p cut falls in
};

}  // namespace supra::sampling_internal

#endif  // SUPRA_ENGINE_SAMPLING_DENSE_DISTRIBUTION_H_

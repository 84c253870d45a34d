// Helpers shared by the CPU backend tests: random tiny models, comparisons,
// and the two ways of feeding a sequence (token by token, chunked).
#ifndef SUPRA_TESTS_ENGINE_CPU_CPU_TEST_UTIL_H_
#define SUPRA_TESTS_ENGINE_CPU_CPU_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "absl/types/span.h"
#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "gtest/gtest.h"
#include "tests/engine/testing/random_model.h"

namespace supra::testing {

// Threads used by the backends under test: the CI machine has 2 cores, and
// two threads exercise the pool's splitting.
inline constexpr int kTestThreads = 2;

inline std::unique_ptr<Backend> MakeBackend(const ModelConfig& config, uint64_t seed, int num_slots = 8,
                                            int num_threads = kTestThreads) {
  RandomModelOptions options;
  options.seed = seed;
  const Checkpoint checkpoint = MakeRandomCheckpoint(config, options);
  auto backend = CreateCpuBackend(config, checkpoint, CpuBackendOptions{num_slots, num_threads});
  EXPECT_TRUE(backend.ok()) << backend.status();
  return backend.ok() ? std::move(*backend) : nullptr;
}

// max|a − ref| / max|ref|: a relative error that small references cannot inflate.
inline double RelMaxDiff(absl::Span<const float> a, absl::Span<const float> ref) {
  EXPECT_EQ(a.size(), ref.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < std::min(a.size(), ref.size()); ++i) {
    diff = std::max(diff, std::abs(double{a[i]} - ref[i]));
    scale = std::max(scale, std::abs(double{ref[i]}));
  }
  return scale == 0 ? diff : diff / scale;
}

// The worst RelMaxDiff over rows of `cols` values.
inline double WorstRowRelDiff(absl::Span<const float> a, absl::Span<const float> ref, size_t cols) {
  EXPECT_EQ(a.size(), ref.size());
  double worst = 0;
  for (size_t r = 0; r * cols < std::min(a.size(), ref.size()); ++r) {
    worst = std::max(worst, RelMaxDiff(a.subspan(r * cols, cols), ref.subspan(r * cols, cols)));
  }
  return worst;
}

inline std::vector<int32_t> RandomTokens(int n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> tokens(n);
  for (int32_t& t : tokens) t = dist(rng);
  return tokens;
}

// Index of the largest value, the lowest index on ties.
inline int32_t Argmax(absl::Span<const float> values) {
  return static_cast<int32_t>(std::max_element(values.begin(), values.end()) - values.begin());
}

// Feeds `tokens` one Decode at a time; returns the logits of every position.
inline std::vector<float> DecodeOneByOne(Backend& backend, int32_t slot, absl::Span<const int32_t> tokens,
                                         int64_t start) {
  const int vocab = backend.config().vocab_size;
  std::vector<float> logits(tokens.size() * vocab);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t position = start + static_cast<int64_t>(i);
    const absl::Status status = backend.Decode(
        DecodeBatch{absl::MakeConstSpan(&slot, 1), tokens.subspan(i, 1), absl::MakeConstSpan(&position, 1)},
        absl::MakeSpan(logits).subspan(i * vocab, vocab));
    EXPECT_TRUE(status.ok()) << status;
  }
  return logits;
}

// Feeds `tokens` in one Prefill call; returns the logits of every position.
inline std::vector<float> PrefillAll(Backend& backend, int32_t slot, absl::Span<const int32_t> tokens, int64_t start,
                                     int chunk_size) {
  std::vector<float> logits(tokens.size() * backend.config().vocab_size);
  const PrefillSequence sequence{slot, tokens, start};
  const absl::Status status =
      backend.Prefill(absl::MakeConstSpan(&sequence, 1), chunk_size, LogitsOutput::kAll, absl::MakeSpan(logits));
  EXPECT_TRUE(status.ok()) << status;
  return logits;
}

inline std::vector<float> ReadState(Backend& backend, int32_t slot) {
  std::vector<float> state(backend.config().state_numel());
  const absl::Status status = backend.ReadState(slot, absl::MakeSpan(state));
  EXPECT_TRUE(status.ok()) << status;
  return state;
}

// Greedy continuation of a slot whose next input is `token` at `position`:
// feeds it, takes the argmax, and so on; returns the `steps` sampled tokens.
inline std::vector<int32_t> GreedyAlone(Backend& backend, int32_t slot, int32_t token, int64_t position, int steps) {
  std::vector<int32_t> out;
  for (int i = 0; i < steps; ++i) {
    const std::vector<float> logits = DecodeOneByOne(backend, slot, absl::MakeConstSpan(&token, 1), position++);
    token = Argmax(logits);
    out.push_back(token);
  }
  return out;
}

inline int DistinctCount(std::vector<int32_t> tokens) {
  std::sort(tokens.begin(), tokens.end());
  return static_cast<int>(std::unique(tokens.begin(), tokens.end()) - tokens.begin());
}

}  // namespace supra::testing

#endif  // SUPRA_TESTS_ENGINE_CPU_CPU_TEST_UTIL_H_

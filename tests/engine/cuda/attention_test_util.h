// Helpers shared by the attention parity tests (attention_test.cc,
// recurrent_attention_test.cc): the CPU reference's thread pool, Mistral's
// decay factors, state sizes and slot sets.
#ifndef SUPRA_TESTS_ENGINE_CUDA_ATTENTION_TEST_UTIL_H_
#define SUPRA_TESTS_ENGINE_CUDA_ATTENTION_TEST_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "engine/cuda/attention_common.h"
#include "engine/model/config.h"
#include "engine/model/decay.h"
#include "engine/util/thread_pool.h"

namespace supra::cuda::testing {

// The pool the CPU reference ops run on (at most 16 threads).
inline ThreadPool* CpuPool() {
  static ThreadPool pool(static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 16u)));
  return &pool;
}

// Elements of one layer's state of one sequence: H · F · Dv.
inline int64_t StateElems(const AttentionDims& d) { return int64_t{d.heads} * d.features * d.value_dim; }

// The per-head decay factors γ of `heads` heads (the lightning slopes of
// Mistral-SUPRA), in fp32 as the kernels take them.
inline std::vector<float> Gammas(int heads) {
  ModelConfig config;
  config.n_heads = heads;
  config.use_decay = true;
  const std::vector<double> g = DecayGammas(config);
  return std::vector<float>(g.begin(), g.end());
}

// n distinct slots of [0, pool_slots) in a seeded random order.
inline std::vector<int32_t> ShuffledSlots(int n, int pool_slots, uint32_t seed) {
  std::vector<int32_t> all(pool_slots);
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), std::mt19937(seed));
  all.resize(n);
  return all;
}

}  // namespace supra::cuda::testing

#endif  // SUPRA_TESTS_ENGINE_CUDA_ATTENTION_TEST_UTIL_H_

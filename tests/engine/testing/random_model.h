// Random SUPRA checkpoints built in memory, so that tests can make a model of
// any shape without files. Deterministic for a seed.
#ifndef SUPRA_TESTS_ENGINE_TESTING_RANDOM_MODEL_H_
#define SUPRA_TESTS_ENGINE_TESTING_RANDOM_MODEL_H_

#include <cstdint>

#include "engine/checkpoint/checkpoint.h"
#include "engine/model/config.h"
#include "engine/util/dtype.h"

namespace supra::testing {

// Where a tied model stores its shared embedding/output matrix.
enum class TiedStorage { kEmbedding, kOutput, kBoth };

struct RandomModelOptions {
  uint64_t seed = 1;
  DType dtype = DType::kF32;  // fp32, bf16 or fp16 storage
  bool unaligned = false;     // start every tensor's bytes at an odd address
  TiedStorage tied_storage = TiedStorage::kEmbedding;
};

// Every tensor of ExpectedTensors(config) with random values: norm weights
// 1 ± 0.2 (uniform), biases ± 0.1 (uniform), matrices N(0, 1/fan_in) with
// fan_in the stored shape's last dimension. The checkpoint owns its bytes.
Checkpoint MakeRandomCheckpoint(const ModelConfig& config, const RandomModelOptions& options = {});

// A small valid config (rms_norm, rotary, swiglu, lightning decay, F = Dh).
ModelConfig TinyConfig(int dim, int n_layers, int n_heads, int n_heads_kv, int v_head_dim, int ffn, int vocab);

}  // namespace supra::testing

#endif  // SUPRA_TESTS_ENGINE_TESTING_RANDOM_MODEL_H_

// The model's weights as float32 arrays owned by the CPU backend, converted
// once from whatever the checkpoint stores (fp32, bf16 or fp16, any alignment).
#ifndef SUPRA_ENGINE_CPU_CPU_WEIGHTS_H_
#define SUPRA_ENGINE_CPU_CPU_WEIGHTS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/model/config.h"

namespace supra::cpu {

struct LayerWeights {
  std::vector<float> attention_norm;  // [D]
  std::vector<float> in_proj;         // [H·Dh + Hkv·Dh + Hkv·Dv, D]
  std::vector<float> embed;           // [H·F, H·Dh], the query feature map (and the key's when Hkv == H)
  std::vector<float> embed_bias;      // [H·F]
  std::vector<float> embed_kv;        // [Hkv·F, Hkv·Dh], empty when Hkv == H
  std::vector<float> embed_kv_bias;   // [Hkv·F], empty when Hkv == H
  std::vector<float> q_norm;          // [H·F], empty without apply_qk_norm
  std::vector<float> k_norm;          // [H·F], empty without apply_qk_norm
  std::vector<float> out_proj;        // [D, H·Dv]
  std::vector<float> ffn_norm;        // [D]
  std::vector<float> w12;             // [2·FFN, D]: rows 0..FFN−1 are W1, the rest W2
  std::vector<float> w3;              // [D, FFN]
};

struct CpuWeights {
  std::vector<float> embedding;        // [V, D]
  std::vector<float> post_embed_norm;  // [D], empty without post_embed_norm
  std::vector<LayerWeights> layers;    // [n_layers]
  std::vector<float> norm;             // [D]
  std::vector<float> output;           // [V, D], empty with weight_tying
  // The output head: `output`, or `embedding` with weight tying.
  const float* head() const { return output.empty() ? embedding.data() : output.data(); }
};

// Validates the checkpoint against the config and converts every tensor.
absl::StatusOr<CpuWeights> LoadCpuWeights(const ModelConfig& config, const Checkpoint& checkpoint);

}  // namespace supra::cpu

#endif  // SUPRA_ENGINE_CPU_CPU_WEIGHTS_H_

// The model configuration (`config.json`, model_type "openlm"), as specified in
// ../shared/docs/supra-model.md §1. Parsing refuses values the engine does not
// implement, naming the field and the value.
#ifndef SUPRA_ENGINE_MODEL_CONFIG_H_
#define SUPRA_ENGINE_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace supra {

struct ModelConfig {
  // Required fields.
  int dim = 0;                   // D, model width
  int n_layers = 0;              // blocks
  int n_heads = 0;               // H, query heads
  int n_heads_kv = 0;            // Hkv, key/value heads (H % Hkv == 0)
  int qk_head_dim = 0;           // F, features per head after the kernel (== Dh with rotary)
  int v_head_dim = 0;            // Dv, value width per head
  int intermediate_dim_ffn = 0;  // SwiGLU hidden size
  int vocab_size = 0;            // V

  // Optional fields with the reference's defaults.
  double norm_eps = 1e-5;               // RMSNorm epsilon (GroupNorm's is a fixed 1e-5)
  double rotary_base_frequency = 10000.0;
  double rotary_scale = 1.0;
  bool post_embed_norm = false;
  bool weight_tying = false;
  bool apply_qk_norm = false;
  bool use_decay = false;
  bool use_retnet_slopes = false;
  std::optional<double> decay_start;  // s0 of the lightning slopes; null -> r
  int seq_len = 0;                    // training context; informational only

  // Derived.
  int head_dim() const { return dim / n_heads; }  // Dh, per-head input width
  int kv_group() const { return n_heads / n_heads_kv; }
  // q, k and v widths of in_proj's output, in that order.
  int64_t q_width() const { return int64_t{n_heads} * head_dim(); }
  int64_t k_width() const { return int64_t{n_heads_kv} * head_dim(); }
  int64_t v_width() const { return int64_t{n_heads_kv} * v_head_dim; }
  // Numbers in one session's recurrent state: layers * H * F * Dv.
  int64_t state_numel() const {
    return int64_t{n_layers} * n_heads * qk_head_dim * v_head_dim;
  }
};

// Parses the text of a config.json. Errors are INVALID_ARGUMENT and name the
// field (missing, wrong type, out of range or not implemented).
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text);

// Reads and parses `path` (NOT_FOUND when the file does not exist).
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path);

}  // namespace supra

#endif  // SUPRA_ENGINE_MODEL_CONFIG_H_

// `generation_config.json`: the special token ids (supra-model.md §2).
#ifndef SUPRA_ENGINE_MODEL_GENERATION_CONFIG_H_
#define SUPRA_ENGINE_MODEL_GENERATION_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace supra {

struct GenerationConfig {
  std::optional<int32_t> bos_token_id;  // unset: take the tokenizer's
  std::optional<int32_t> eos_token_id;
};

// Parses the JSON text; unknown fields are ignored; ids must be non-negative
// integers (an `eos_token_id` list takes its first element).
absl::StatusOr<GenerationConfig> ParseGenerationConfig(std::string_view json_text);

// Reads `path`; a missing file is not an error (every field unset).
absl::StatusOr<GenerationConfig> LoadGenerationConfig(const std::string& path);

}  // namespace supra

#endif  // SUPRA_ENGINE_MODEL_GENERATION_CONFIG_H_

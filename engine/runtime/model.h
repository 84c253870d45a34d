// A model directory loaded for serving: config, tokenizer, special ids,
// fingerprint and a compute backend holding the weights.
//
// The directory holds config.json, tokenizer.model, optionally
// generation_config.json, and the weights in one of the formats
// OpenCheckpoint reads. Loading checks everything against config.json and
// fails with one error that says what is wrong.
#ifndef SUPRA_ENGINE_RUNTIME_MODEL_H_
#define SUPRA_ENGINE_RUNTIME_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/model/config.h"
#include "engine/tokenizer/tokenizer.h"

namespace supra {

struct ModelOptions {
  std::string dir;               // model directory
  std::string backend = "cpu";   // "cpu" or "cuda"
  CpuBackendOptions cpu;
  CudaBackendOptions cuda;
};

class Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Load(const ModelOptions& options);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  Backend& backend() { return *backend_; }
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  // Identifies weights + config + tokenizer (engine/model/fingerprint.h).
  const std::string& fingerprint() const { return fingerprint_; }
  // The checkpoint's format, e.g. "safetensors, 1 file".
  const std::string& weights_format() const { return weights_format_; }
  // Bytes of one session's recurrent state in float32.
  int64_t state_bytes() const { return config_.state_numel() * 4; }

 private:
  Model() = default;

  std::string dir_;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Backend> backend_;
  int32_t bos_id_ = 1;
  int32_t eos_id_ = 2;
  std::string fingerprint_;
  std::string weights_format_;
};

}  // namespace supra

#endif  // SUPRA_ENGINE_RUNTIME_MODEL_H_

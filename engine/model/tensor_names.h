// The tensors a checkpoint must hold for a config (supra-model.md §2), and
// the check of a checkpoint against that list.
#ifndef SUPRA_ENGINE_MODEL_TENSOR_NAMES_H_
#define SUPRA_ENGINE_MODEL_TENSOR_NAMES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/model/config.h"

namespace supra {

struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
};

// Every tensor the model reads, with its stored shape. With weight_tying the
// list holds model.tok_embeddings.weight only, although a checkpoint may hold
// the shared matrix under either name or both (see TiedEmbeddingName).
std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& config);

// INVALID_ARGUMENT listing every missing tensor, every wrong shape, every
// non-float dtype and every unexpected tensor; OK when the checkpoint fits.
absl::Status ValidateCheckpoint(const ModelConfig& config, const Checkpoint& checkpoint);

// With weight_tying: the name under which `checkpoint` holds the shared
// embedding/output matrix (the embedding's name when both are present).
std::string TiedEmbeddingName(const Checkpoint& checkpoint);

}  // namespace supra

#endif  // SUPRA_ENGINE_MODEL_TENSOR_NAMES_H_

// The model's weights on the device: matrices in bf16, norm weights and
// biases in fp32, carved out of one allocation.
#ifndef SUPRA_ENGINE_CUDA_CUDA_WEIGHTS_H_
#define SUPRA_ENGINE_CUDA_CUDA_WEIGHTS_H_

#include <cuda_bf16.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/cuda/device_buffer.h"
#include "engine/model/config.h"

namespace supra::cuda {

struct CudaLayerWeights {
  const float* attention_norm = nullptr;        // [D]
  const __nv_bfloat16* in_proj = nullptr;       // [H·Dh + Hkv·Dh + Hkv·Dv, D]
  const __nv_bfloat16* embed_q = nullptr;       // [H·F, H·Dh]
  const float* embed_q_bias = nullptr;          // [H·F]
  const __nv_bfloat16* embed_kv = nullptr;      // [Hkv·F, Hkv·Dh]; == embed_q when H == Hkv
  const float* embed_kv_bias = nullptr;         // [Hkv·F]
  const float* q_norm = nullptr;                // [H·F], only with apply_qk_norm
  const float* k_norm = nullptr;                // [H·F], only with apply_qk_norm
  const __nv_bfloat16* out_proj = nullptr;      // [D, H·Dv]
  const float* ffn_norm = nullptr;              // [D]
  const __nv_bfloat16* w12 = nullptr;           // [2·FFN, D], rows interleaved (w12_layout.h)
  const __nv_bfloat16* w3 = nullptr;            // [D, FFN]
};

struct CudaWeights {
  DeviceBuffer<uint8_t> arena;                  // owns everything below
  const __nv_bfloat16* embedding = nullptr;     // [V, D]
  const float* post_embed_norm = nullptr;       // [D] or null
  std::vector<CudaLayerWeights> layers;
  const float* final_norm = nullptr;            // [D]
  const __nv_bfloat16* output = nullptr;        // [V, D]; == embedding when tied
  int64_t matrix_bytes = 0;                     // bf16 bytes of every matrix read per decode step
};

// Converts the checkpoint's tensors (fp32/bf16/fp16) to the device dtypes and
// uploads them; w12's rows are reordered into the interleaved layout of
// w12_layout.h. The checkpoint must have passed ValidateCheckpoint.
absl::StatusOr<CudaWeights> UploadWeights(const ModelConfig& config, const Checkpoint& checkpoint,
                                          cudaStream_t stream);

// Random weights made on the device (for benchmarks of full-size models that
// are not on disk): matrices N(0, 1/fan_in)-like uniform values, norm weights
// near 1, biases near 0, deterministic for a seed. (Independent random rows:
// w12's interleaved order needs no reordering.)
absl::StatusOr<CudaWeights> RandomWeights(const ModelConfig& config, uint64_t seed, cudaStream_t stream);

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_CUDA_WEIGHTS_H_

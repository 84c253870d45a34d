// The CUDA backend: bf16 weights (converted once at load from fp32/bf16/fp16),
// recurrent state in fp32 by default (bf16 as a capacity option), cuBLAS for
// the projections, own kernels for the rest (engine/cuda/*.cu, one op each).
//
// Activations of one layer for n rows (decode: one row per sequence; prefill:
// the tokens of every sequence, concatenated):
//   x      [n, D]                        fp32   residual stream
//   h      [n, D]                        bf16   RMSNorm(x) ⊙ attention_norm
//   qkv    [n, H·Dh + Hkv·Dh + Hkv·Dv]   bf16   h · in_projᵀ
//   fq     [n, H·F]                      fp32   q · W_eᵀ, then ReLU(+b), qk norm, RoPE
//   fk     [n, Hk·F]                     fp32   k · W_kvᵀ, then ReLU(+b), qk norm, RoPE, / sqrt(F)
//   o      [n, H·Dv]                     bf16   linear attention + GroupNorm
//   x     += o · out_projᵀ               fp32
//   g      [n, D]                        bf16   RMSNorm(x) ⊙ ffn_norm
//   ab     [n, 2·FFN]                    bf16   g · w12ᵀ
//   s      [n, FFN]                      bf16   silu(a) ⊙ b
//   x     += s · w3ᵀ                     fp32
// then logits [n, V] fp32 = (RMSNorm(x) ⊙ norm, as bf16) · outputᵀ.
// Hk is H with qk norm (every query head has its own normalised key), else Hkv.
//
// State pool: [slots, layers, H, F, Dv] in fp32 (or bf16), on the device.
// Offsets into it are 64-bit: slot · layers · H · F · Dv overflows 32 bits
// from slot 128 on at Mistral-SUPRA's size.
//
// Not thread-safe: one scheduler thread owns a backend (and its GPU).
#ifndef SUPRA_ENGINE_CUDA_CUDA_BACKEND_H_
#define SUPRA_ENGINE_CUDA_CUDA_BACKEND_H_

#include <memory>

#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/model/config.h"

namespace supra {

enum class StateDType { kF32, kBF16 };

struct CudaBackendOptions {
  int device = 0;
  int num_slots = 8;                        // state-pool slots
  StateDType state_dtype = StateDType::kF32;
  int max_batch = 256;                      // sequences in one decode step at most
  int max_prefill_tokens = 4096;            // rows of one prefill pass at most (longer prompts take several)
  bool cuda_graphs = true;                  // capture decode steps as CUDA graphs, per batch size
};

// Uploads the weights (the checkpoint may be closed afterwards). Errors:
// UNIMPLEMENTED when built without CUDA, UNAVAILABLE without a usable device,
// RESOURCE_EXHAUSTED naming the bytes needed and free when the weights or the
// state pool do not fit.
absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const ModelConfig& config, const Checkpoint& checkpoint,
                                                           const CudaBackendOptions& options);

// The same backend with random weights made on the device, for benchmarks of
// full-size models that are not on disk (engine/cuda/cuda_weights.h).
absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackendWithRandomWeights(const ModelConfig& config,
                                                                            const CudaBackendOptions& options,
                                                                            uint64_t seed);

// True when this build has the CUDA backend and a device is visible.
bool CudaDeviceAvailable();

}  // namespace supra

#endif  // SUPRA_ENGINE_CUDA_CUDA_BACKEND_H_

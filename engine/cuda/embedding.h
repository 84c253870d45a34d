// Token embedding lookup: the first op of the forward pass.
#ifndef SUPRA_ENGINE_CUDA_EMBEDDING_H_
#define SUPRA_ENGINE_CUDA_EMBEDDING_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace supra::cuda {

// out[i] = float(table[tokens[i]]) (exact: every bf16 is a float). The caller
// validates the tokens on the host; a token outside [0, vocab) that slips
// through still never reads outside the table: its row becomes NaN, so that
// the mistake shows in the logits instead of passing silently.
// INVALID_ARGUMENT for null pointers (with n > 0) or sizes out of range.
// Launched with programmatic dependent launch (programmatic_launch.cuh): it
// may start while the previous kernel finishes, and waits for it before
// reading anything.
absl::Status LaunchEmbeddingGather(const __nv_bfloat16* table,  // [vocab, dim], bf16
                                   int64_t vocab, int64_t dim,
                                   const int32_t* tokens,  // [n], int32, device
                                   int64_t n,
                                   float* out,  // [n, dim], fp32
                                   cudaStream_t stream);

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_EMBEDDING_H_

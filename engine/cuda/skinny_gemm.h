// Decode projections for mid-size batches (n = 9..64, correct for 1..128):
// y[n, out] (= or +=) x[n, in] · W[out, in]ᵀ with bf16 x and W, fp32
// accumulation and a bf16 or fp32 y, on the tensor cores with W streamed
// through a multi-stage shared-memory pipeline ("skinny GEMM"). The operand
// contract is GemmOperands (gemm.h); see skinny_gemm.cu for the tiling.
//
// Rounding: products of bf16 values are exact in fp32 and sums are fp32 in a
// fixed order (k16 steps within a K slice, then the slices in index order),
// so every run gives the same bits. The split of K depends on in and out
// only (never on n), and each output column is computed independently, so a
// row's results do not depend on n or on the other rows of the batch.
#ifndef SUPRA_ENGINE_CUDA_SKINNY_GEMM_H_
#define SUPRA_ENGINE_CUDA_SKINNY_GEMM_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "engine/cuda/gemm.h"

namespace supra::cuda {

// Largest batch the kernel takes.
inline constexpr int64_t kSkinnyGemmMaxRows = 128;

struct SkinnyGemmOptions {
  // Number of K slices (split-K; the slices of a row tile run as one
  // thread-block cluster and add their partial sums through distributed
  // shared memory). 0 chooses from in and out (enough blocks for two per SM
  // of an H200); 1 disables split-K. Rounded down to a power of two ≤ 8 and
  // ≤ the number of 64-wide k-steps. Different splits sum in different orders.
  int split_k = 0;
  // Programmatic dependent launch (programmatic_launch.cuh): the grid may
  // start while the previous kernel finishes; it waits for it before it
  // touches x or y.
  bool programmatic_launch = true;
  // With programmatic launch: start copying the first weight tiles into
  // shared memory before that wait (weights never depend on the previous
  // kernel).
  bool prefetch_weights = true;
};

// OK when the kernel takes op; else INVALID_ARGUMENT naming why: null
// pointers, n outside [1, 128], in or out outside [1, 2^30], strides below
// in / out, in or x_stride not a multiple of 8, x or W not 16-byte aligned,
// or accumulate with a bf16 y (the caller then uses cuBLAS).
absl::Status CheckSkinnyGemm(const GemmOperands& op);

// Runs op on `stream`; CheckSkinnyGemm's errors before any launch. y must
// not overlap x or W. No workspace and no allocation: the launch can be
// captured in a CUDA graph, and launches on different streams may overlap.
absl::Status LaunchSkinnyGemm(const GemmOperands& op, cudaStream_t stream, const SkinnyGemmOptions& options = {});

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_SKINNY_GEMM_H_

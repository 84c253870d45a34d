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

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "engine/cuda/gemm.h"

namespace supra::cuda {

// Largest batch the kernel takes.
inline constexpr int64_t kSkinnyGemmMaxRows = 128;

struct SkinnyGemmOptions {
  // Number of K slices (split-K); 0 chooses from in and out (enough blocks
  // for two per SM of an H200); 1 disables split-K. Clamped to the number of
  // 64-wide k-steps. Different splits sum in different orders.
  int split_k = 0;
  // Programmatic dependent launch (programmatic_launch.cuh): the grid may
  // start while the previous kernel finishes; it waits for it before it
  // touches x, y or the workspace.
  bool programmatic_launch = true;
  // With programmatic launch: start copying the first weight tiles into
  // shared memory before that wait (weights never depend on the previous
  // kernel).
  bool prefetch_weights = true;
};

// Bytes of workspace a launch with these sizes needs (0 when it runs without
// split-K). A workspace sized for n also serves every smaller n. The
// workspace holds per-tile arrival counters and the fp32 partial sums of the
// K slices; it must be zeroed once after allocation (cudaMemset) and is left
// zeroed (counters) by every completed launch. Launches that may run
// concurrently need separate workspaces.
size_t SkinnyGemmWorkspaceBytes(int64_t n, int64_t in, int64_t out, const SkinnyGemmOptions& options = {});

// Runs op on `stream`. INVALID_ARGUMENT, before any launch, for null
// pointers, n outside [1, 128], in or out outside [1, 2^30], strides below
// in / out, in or x_stride not a multiple of 8, x or W not 16-byte aligned,
// accumulate with a bf16 y, or a workspace (128-byte aligned) smaller than
// SkinnyGemmWorkspaceBytes; the caller then falls back to cuBLAS. y must not
// overlap x or W. No allocation: the launch can be captured in a CUDA graph.
absl::Status LaunchSkinnyGemm(const GemmOperands& op,
                              void* workspace,  // SkinnyGemmWorkspaceBytes(op.n, op.in, op.out, options) bytes
                              size_t workspace_bytes, cudaStream_t stream, const SkinnyGemmOptions& options = {});

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_SKINNY_GEMM_H_

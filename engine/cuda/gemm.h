// The projections: y[n, out] (= or +=) x[n, in] · W[out, in]ᵀ with bf16 x and
// W, fp32 accumulation and a bf16 or fp32 y, all row-major with row strides.
// Small batches go to the own GEMV kernel (engine/cuda/gemv.h), which streams
// the weights closer to the bandwidth limit than cuBLAS does at n ≤ 16;
// larger ones to cuBLAS.
#ifndef SUPRA_ENGINE_CUDA_GEMM_H_
#define SUPRA_ENGINE_CUDA_GEMM_H_

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/cuda/device_buffer.h"

namespace supra::cuda {

struct GemmOperands {
  const __nv_bfloat16* x = nullptr;  // [n, in], row stride x_stride
  int64_t x_stride = 0;
  const __nv_bfloat16* w = nullptr;  // [out, in], contiguous (nn.Linear layout)
  void* y = nullptr;                 // [n, out], row stride y_stride; fp32 or bf16
  int64_t y_stride = 0;
  bool y_is_bf16 = false;
  bool accumulate = false;           // y += x·Wᵀ (fp32 y only: the residual stream)
  int64_t n = 0, in = 0, out = 0;
};

class GemmRunner {
 public:
  // Creates the cuBLAS handle bound to `stream`, with a fixed workspace so
  // that GEMMs can be captured in CUDA graphs.
  static absl::StatusOr<GemmRunner> Create(cudaStream_t stream);

  GemmRunner() = default;  // empty: assign from Create before use
  GemmRunner(GemmRunner&& other) noexcept;
  GemmRunner& operator=(GemmRunner&& other) noexcept;
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;
  ~GemmRunner();

  absl::Status Run(const GemmOperands& op);

  // Largest n for which the GEMV kernel is used (0 disables it: cuBLAS only).
  void set_gemv_max_rows(int rows) { gemv_max_rows_ = rows; }

 private:
  cublasHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer<uint8_t> workspace_;
  int gemv_max_rows_ = 8;
};

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_GEMM_H_

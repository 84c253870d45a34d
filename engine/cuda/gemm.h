// The projections: y[n, out] (= or +=) x[n, in] · W[out, in]ᵀ with bf16 x and
// W, fp32 accumulation and a bf16 or fp32 y, all row-major with row strides.
// Three kernels by batch, each where it made the decode step fastest on the
// H200: n ≤ 8 the own GEMV kernel (engine/cuda/gemv.h); 8 < n ≤ 16 the
// tensor-core skinny GEMM (engine/cuda/skinny_gemm.h: step at batch 9 5.29
// against 5.51 ms with cuBLAS, batch 16 5.73 against 5.78; at 32 and 64 it
// is slower than cuBLAS, 7.01 against 6.55 and 9.47 against 7.90); larger
// batches, and operands the skinny kernel does not take, cuBLAS.
#ifndef SUPRA_ENGINE_CUDA_GEMM_H_
#define SUPRA_ENGINE_CUDA_GEMM_H_

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <type_traits>

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
  bool accumulate = false;  // y += x·Wᵀ (fp32 y only: the residual stream)
  int64_t n = 0, in = 0, out = 0;
};

// The feed-forward hidden layer: out = bf16(silu(W1·x) ⊙ W2·x) from the
// device's interleaved w12 (w12_layout.h).
struct SwiGluOperands {
  const __nv_bfloat16* x = nullptr;  // [n, in], row stride x_stride
  int64_t x_stride = 0;
  const __nv_bfloat16* w12 = nullptr;  // [2·ffn, in], interleaved
  __nv_bfloat16* out = nullptr;        // [n, ffn], contiguous
  __nv_bfloat16* ab = nullptr;         // [n, 2·ffn] scratch (the cuBLAS path only)
  int64_t n = 0, in = 0, ffn = 0;
};

class GemmRunner {
 public:
  // Creates the cuBLAS handle bound to `stream`, with a fixed workspace so
  // that GEMMs can be captured in CUDA graphs.
  static absl::StatusOr<GemmRunner> Create(cudaStream_t stream);

  GemmRunner() = default;  // empty: assign from Create before use
  GemmRunner(GemmRunner&&) noexcept = default;
  GemmRunner& operator=(GemmRunner&&) noexcept = default;
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;
  ~GemmRunner() = default;

  absl::Status Run(const GemmOperands& op);

  // Two independent projections with the same n, y dtype and accumulate
  // mode (the feature-map projections of q and k): one grouped GEMV launch
  // (LaunchGemvPair) for small batches; otherwise two GEMMs that run side by
  // side: `second` on a side stream forked from and joined back into the
  // runner's stream by events (parallel branches of the CUDA graph when
  // captured), so the small kv projection hides under the q projection
  // instead of following it (4.6 µs a layer at batch 64 on the H200).
  absl::Status RunPair(const GemmOperands& first, const GemmOperands& second);

  // The feed-forward input projection and SwiGLU: one GEMV launch with the
  // activation in its epilogue (LaunchGemvSwiGlu) for small batches; a GEMM
  // into op.ab and LaunchSwiGlu otherwise. Same results either way up to the
  // order of the projection's sums.
  absl::Status RunSwiGlu(const SwiGluOperands& op);

  // Largest n for which the GEMV kernel is used (0 disables it).
  void set_gemv_max_rows(int rows) { gemv_max_rows_ = rows; }
  // Largest n for which the skinny GEMM is used above the GEMV range (0
  // disables it; at most kSkinnyGemmMaxRows). The environment variable
  // SUPRA_GEMM_SKINNY_MAX_ROWS sets the initial value, for measurements.
  void set_skinny_max_rows(int rows) { skinny_max_rows_ = rows; }

 private:
  struct HandleDeleter {
    void operator()(cublasHandle_t handle) const;
  };
  struct StreamDeleter {
    void operator()(cudaStream_t stream) const;
  };
  struct EventDeleter {
    void operator()(cudaEvent_t event) const;
  };
  using Handle = std::unique_ptr<std::remove_pointer_t<cublasHandle_t>, HandleDeleter>;
  using Stream = std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDeleter>;
  using Event = std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, EventDeleter>;

  // A cuBLAS handle bound to `stream` with its own workspace (a handle's
  // workspace must not be shared by GEMMs that may run concurrently).
  static absl::StatusOr<Handle> CreateHandle(cudaStream_t stream, const DeviceBuffer<uint8_t>& workspace);
  // One projection above the GEMV range on `stream`: the skinny GEMM where
  // it applies, else cuBLAS through `handle` (bound to `stream`).
  absl::Status Gemm(cublasHandle_t handle, cudaStream_t stream, const GemmOperands& op);

  // Members are destroyed in reverse order: handles before their streams.
  cudaStream_t stream_ = nullptr;  // not owned
  DeviceBuffer<uint8_t> workspace_;
  Handle handle_;
  Stream side_stream_;  // RunPair's second GEMM
  DeviceBuffer<uint8_t> side_workspace_;
  Handle side_handle_;
  Event fork_, join_;
  int gemv_max_rows_ = 8;
  int skinny_max_rows_ = 16;
};

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_GEMM_H_

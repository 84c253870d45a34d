#include "engine/cuda/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/gemv.h"
#include "engine/cuda/skinny_gemm.h"
#include "engine/cuda/swiglu.h"
#include "engine/util/status_macros.h"

namespace supra::cuda {
namespace {

// cuBLAS needs a workspace it does not allocate itself during graph capture.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

// SUPRA_GEMM_GEMV_MAX_ROWS=N and SUPRA_GEMM_SKINNY_MAX_ROWS=N (for
// measurements): the GEMV kernel up to batch N (at most kGemvMaxRows), the
// skinny kernel up to batch N (at most kSkinnyGemmMaxRows); 0 disables
// either. Unset or empty: `fallback`. Each read once.
int EnvRows(const char* name, int max_rows, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::clamp(std::atoi(value), 0, max_rows);
}
int EnvGemvMaxRows(int fallback) {
  static const int rows = EnvRows("SUPRA_GEMM_GEMV_MAX_ROWS", static_cast<int>(kGemvMaxRows), -1);
  return rows >= 0 ? rows : fallback;
}
int EnvSkinnyMaxRows(int fallback) {
  static const int rows = EnvRows("SUPRA_GEMM_SKINNY_MAX_ROWS", static_cast<int>(kSkinnyGemmMaxRows), -1);
  return rows >= 0 ? rows : fallback;
}

}  // namespace

void GemmRunner::HandleDeleter::operator()(cublasHandle_t handle) const { (void)cublasDestroy(handle); }
void GemmRunner::StreamDeleter::operator()(cudaStream_t stream) const { (void)cudaStreamDestroy(stream); }
void GemmRunner::EventDeleter::operator()(cudaEvent_t event) const { (void)cudaEventDestroy(event); }

absl::StatusOr<GemmRunner::Handle> GemmRunner::CreateHandle(cudaStream_t stream,
                                                            const DeviceBuffer<uint8_t>& workspace) {
  cublasHandle_t raw = nullptr;
  CUBLAS_RETURN_IF_ERROR(cublasCreate(&raw));
  Handle handle(raw);
  CUBLAS_RETURN_IF_ERROR(cublasSetStream(raw, stream));
  CUBLAS_RETURN_IF_ERROR(cublasSetWorkspace(raw, workspace.data(), workspace.bytes()));
  CUBLAS_RETURN_IF_ERROR(cublasSetMathMode(raw, CUBLAS_DEFAULT_MATH));
  return handle;
}

absl::StatusOr<GemmRunner> GemmRunner::Create(cudaStream_t stream) {
  GemmRunner runner;
  runner.stream_ = stream;
  runner.gemv_max_rows_ = EnvGemvMaxRows(runner.gemv_max_rows_);
  runner.skinny_max_rows_ = EnvSkinnyMaxRows(runner.skinny_max_rows_);
  ASSIGN_OR_RETURN(runner.workspace_, DeviceBuffer<uint8_t>::Allocate(kWorkspaceBytes, "cuBLAS workspace"));
  ASSIGN_OR_RETURN(runner.handle_, CreateHandle(stream, runner.workspace_));

  cudaStream_t side = nullptr;
  CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
  runner.side_stream_.reset(side);
  ASSIGN_OR_RETURN(runner.side_workspace_, DeviceBuffer<uint8_t>::Allocate(kWorkspaceBytes, "cuBLAS workspace"));
  ASSIGN_OR_RETURN(runner.side_handle_, CreateHandle(side, runner.side_workspace_));
  for (Event* event : {&runner.fork_, &runner.join_}) {
    cudaEvent_t raw = nullptr;
    CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&raw, cudaEventDisableTiming));
    event->reset(raw);
  }
  return runner;
}

namespace {

absl::Status CheckOperands(const GemmOperands& op) {
  if (op.n <= 0 || op.in <= 0 || op.out <= 0 || op.x == nullptr || op.w == nullptr || op.y == nullptr ||
      op.x_stride < op.in || op.y_stride < op.out || (op.accumulate && op.y_is_bf16)) {
    return absl::InvalidArgumentError(absl::StrCat("GEMM: bad operands n=", op.n, " in=", op.in, " out=", op.out,
                                                   " x_stride=", op.x_stride, " y_stride=", op.y_stride));
  }
  return absl::OkStatus();
}

GemvProblem ToProblem(const GemmOperands& op) {
  return GemvProblem{op.x, op.x_stride, op.w, /*bias=*/nullptr, op.y, op.y_stride, op.in, op.out};
}

}  // namespace

absl::Status GemmRunner::RunPair(const GemmOperands& first, const GemmOperands& second) {
  RETURN_IF_ERROR(CheckOperands(first));
  RETURN_IF_ERROR(CheckOperands(second));
  if (first.n != second.n || first.y_is_bf16 != second.y_is_bf16 || first.accumulate != second.accumulate) {
    return absl::InvalidArgumentError("GEMM pair: the two projections differ in n, y dtype or accumulate mode");
  }
  if (first.n <= gemv_max_rows_) {
    return LaunchGemvPair(ToProblem(first), ToProblem(second), first.y_is_bf16, first.n, first.accumulate, stream_);
  }
  // Fork: the side stream starts after everything queued so far on stream_.
  CUDA_RETURN_IF_ERROR(cudaEventRecord(fork_.get(), stream_));
  CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(side_stream_.get(), fork_.get()));
  const absl::Status side = Gemm(side_handle_.get(), side_stream_.get(), second);
  const absl::Status main = Gemm(handle_.get(), stream_, first);
  // Join even after a failed GEMM: a capture with an unjoined branch cannot end.
  CUDA_RETURN_IF_ERROR(cudaEventRecord(join_.get(), side_stream_.get()));
  CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream_, join_.get()));
  RETURN_IF_ERROR(side);
  return main;
}

absl::Status GemmRunner::RunSwiGlu(const SwiGluOperands& op) {
  if (op.n <= 0 || op.in <= 0 || op.ffn <= 0 || op.x == nullptr || op.w12 == nullptr || op.out == nullptr ||
      op.x_stride < op.in) {
    return absl::InvalidArgumentError(
        absl::StrCat("GEMM SwiGLU: bad operands n=", op.n, " in=", op.in, " ffn=", op.ffn, " x_stride=", op.x_stride));
  }
  if (op.n <= gemv_max_rows_) {
    return LaunchGemvSwiGlu(op.x, op.x_stride, op.w12, op.out, op.ffn, op.n, op.in, op.ffn, stream_);
  }
  if (op.ab == nullptr) return absl::InvalidArgumentError("GEMM SwiGLU: no ab scratch for the cuBLAS path");
  RETURN_IF_ERROR(Run({.x = op.x,
                       .x_stride = op.x_stride,
                       .w = op.w12,
                       .y = op.ab,
                       .y_stride = 2 * op.ffn,
                       .y_is_bf16 = true,
                       .n = op.n,
                       .in = op.in,
                       .out = 2 * op.ffn}));
  return LaunchSwiGlu(op.ab, op.n, op.ffn, op.out, stream_);
}

absl::Status GemmRunner::Run(const GemmOperands& op) {
  RETURN_IF_ERROR(CheckOperands(op));
  if (op.n <= gemv_max_rows_) {
    return LaunchGemv(op.x, op.x_stride, op.w, /*bias=*/nullptr, op.y, op.y_stride, op.y_is_bf16, op.n, op.in, op.out,
                      op.accumulate, stream_);
  }
  return Gemm(handle_.get(), stream_, op);
}

absl::Status GemmRunner::Gemm(cublasHandle_t handle, cudaStream_t stream, const GemmOperands& op) {
  if (op.n <= skinny_max_rows_ && CheckSkinnyGemm(op).ok()) return LaunchSkinnyGemm(op, stream);
  // Row-major y[n, out] is column-major yᵀ[out, n] = W[out, in] · xᵀ[in, n]:
  // W row-major [out, in] is column-major [in, out] (lda = in), transposed.
  const float alpha = 1.0f;
  const float beta = op.accumulate ? 1.0f : 0.0f;
  CUBLAS_RETURN_IF_ERROR(cublasGemmEx(
      handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(op.out), static_cast<int>(op.n), static_cast<int>(op.in),
      &alpha, op.w, CUDA_R_16BF, static_cast<int>(op.in), op.x, CUDA_R_16BF, static_cast<int>(op.x_stride), &beta, op.y,
      op.y_is_bf16 ? CUDA_R_16BF : CUDA_R_32F, static_cast<int>(op.y_stride), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return absl::OkStatus();
}

}  // namespace supra::cuda

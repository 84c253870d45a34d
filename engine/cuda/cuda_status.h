// CUDA and cuBLAS errors as absl::Status, and the process-wide record of
// "sticky" errors.
//
// Errors that leave the device usable (out of memory, an invalid launch
// configuration, a bad argument) fail only the call that met them. Sticky
// errors (an illegal address, a kernel trap, ...) poison the CUDA context for
// the rest of the process: once one is seen, DevicePoisoned() is true, every
// later backend call fails at once, the server reports not-ready, and the
// process is expected to exit so that its supervisor restarts it.
#ifndef SUPRA_ENGINE_CUDA_CUDA_STATUS_H_
#define SUPRA_ENGINE_CUDA_CUDA_STATUS_H_

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "absl/status/status.h"

namespace supra::cuda {

// True for errors after which the CUDA context cannot be used again.
bool IsStickyError(cudaError_t error);

// True once any sticky error has been converted by CudaStatus in this process.
bool DevicePoisoned();

// The Status for `error` (OK for cudaSuccess): RESOURCE_EXHAUSTED for out of
// memory, INVALID_ARGUMENT for invalid values or launch configurations,
// INTERNAL otherwise; sticky errors also set DevicePoisoned(). The message
// names the failed expression and the CUDA error.
absl::Status CudaStatus(cudaError_t error, const char* expression, const char* file, int line);
absl::Status CublasStatus(cublasStatus_t status, const char* expression, const char* file, int line);

// UNAVAILABLE when the device is poisoned; call at the start of backend calls.
absl::Status CheckDeviceUsable();

}  // namespace supra::cuda

#define CUDA_RETURN_IF_ERROR(expr)                                                        \
  do {                                                                                    \
    const cudaError_t supra_cuda_error_ = (expr);                                         \
    if (supra_cuda_error_ != cudaSuccess)                                                 \
      return ::supra::cuda::CudaStatus(supra_cuda_error_, #expr, __FILE__, __LINE__);     \
  } while (0)

// After a kernel launch: reports a bad launch configuration at once.
#define CUDA_RETURN_IF_LAUNCH_ERROR() CUDA_RETURN_IF_ERROR(cudaGetLastError())

#define CUBLAS_RETURN_IF_ERROR(expr)                                                        \
  do {                                                                                      \
    const cublasStatus_t supra_cublas_status_ = (expr);                                     \
    if (supra_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                      \
      return ::supra::cuda::CublasStatus(supra_cublas_status_, #expr, __FILE__, __LINE__);  \
  } while (0)

#endif  // SUPRA_ENGINE_CUDA_CUDA_STATUS_H_

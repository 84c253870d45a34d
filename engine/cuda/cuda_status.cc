#include "engine/cuda/cuda_status.h"

#include <atomic>

#include "absl/strings/str_cat.h"

namespace supra::cuda {
namespace {

std::atomic<bool> g_poisoned{false};

}  // namespace

bool IsStickyError(cudaError_t error) {
  switch (error) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorUnknown:
    case cudaErrorContextIsDestroyed:
      return true;
    default:
      return false;
  }
}

bool DevicePoisoned() { return g_poisoned.load(std::memory_order_acquire); }

absl::Status CudaStatus(cudaError_t error, const char* expression, const char* file, int line) {
  if (error == cudaSuccess) return absl::OkStatus();
  const std::string message = absl::StrCat("CUDA error ", cudaGetErrorName(error), " (", cudaGetErrorString(error),
                                           ") in ", expression, " at ", file, ":", line);
  if (IsStickyError(error)) {
    g_poisoned.store(true, std::memory_order_release);
    return absl::InternalError(absl::StrCat(message, "; the CUDA context is unusable, the process must restart"));
  }
  switch (error) {
    case cudaErrorMemoryAllocation:
      return absl::ResourceExhaustedError(message);
    case cudaErrorInvalidValue:
    case cudaErrorInvalidConfiguration:
    case cudaErrorInvalidDevicePointer:
      return absl::InvalidArgumentError(message);
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status CublasStatus(cublasStatus_t status, const char* expression, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  const std::string message = absl::StrCat("cuBLAS error ", cublasGetStatusName(status), " (",
                                           cublasGetStatusString(status), ") in ", expression, " at ", file, ":", line);
  switch (status) {
    case CUBLAS_STATUS_ALLOC_FAILED:
      return absl::ResourceExhaustedError(message);
    case CUBLAS_STATUS_INVALID_VALUE:
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return absl::InvalidArgumentError(message);
    case CUBLAS_STATUS_EXECUTION_FAILED: {
      // The kernel failed: find out whether the context survived.
      const cudaError_t last = cudaDeviceSynchronize();
      if (IsStickyError(last)) g_poisoned.store(true, std::memory_order_release);
      return absl::InternalError(message);
    }
    default:
      return absl::InternalError(message);
  }
}

absl::Status CheckDeviceUsable() {
  if (DevicePoisoned()) {
    return absl::UnavailableError("the CUDA device hit an unrecoverable error earlier; the process must restart");
  }
  return absl::OkStatus();
}

}  // namespace supra::cuda

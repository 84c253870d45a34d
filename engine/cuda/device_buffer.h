// Owning device memory (cudaMalloc/cudaFree), typed, movable.
#ifndef SUPRA_ENGINE_CUDA_DEVICE_BUFFER_H_
#define SUPRA_ENGINE_CUDA_DEVICE_BUFFER_H_

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"

namespace supra::cuda {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      Free();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { Free(); }

  // `count` elements, uninitialised. RESOURCE_EXHAUSTED names the bytes asked
  // for and the bytes free; `what` says what the memory is for.
  static absl::StatusOr<DeviceBuffer> Allocate(size_t count, const char* what = "buffer") {
    DeviceBuffer buffer;
    if (count == 0) return buffer;
    const cudaError_t error = cudaMalloc(reinterpret_cast<void**>(&buffer.data_), count * sizeof(T));
    if (error != cudaSuccess) {
      (void)cudaGetLastError();  // clear the (non-sticky) allocation error
      size_t free_bytes = 0, total_bytes = 0;
      (void)cudaMemGetInfo(&free_bytes, &total_bytes);
      absl::Status status = CudaStatus(error, "cudaMalloc", __FILE__, __LINE__);
      return absl::Status(status.code(),
                          absl::StrCat("cannot allocate ", count * sizeof(T), " bytes of GPU memory for ", what, " (",
                                       free_bytes, " of ", total_bytes, " bytes free): ", status.message()));
    }
    buffer.size_ = count;
    return buffer;
  }

  T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * sizeof(T); }

 private:
  void Free() {
    if (data_ != nullptr) (void)cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_DEVICE_BUFFER_H_

#include "engine/cuda/device_limits.h"

#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <utility>

#include "engine/cuda/cuda_status.h"

namespace supra::cuda {
namespace {

// std::mutex, not absl::Mutex: conventions.md (TSan).
struct Cache {
  std::mutex mu;
  std::map<int, DeviceLimits> limits;                   // by device; guarded by mu
  std::map<std::pair<const void*, int>, int> opted_in;  // (kernel, device) -> bytes; guarded by mu
};

Cache& GetCache() {
  static Cache* cache = new Cache();  // never destroyed: launches may run during static destruction
  return *cache;
}

}  // namespace

absl::StatusOr<DeviceLimits> CurrentDeviceLimits() {
  int device = 0;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  Cache& cache = GetCache();
  {
    const std::lock_guard<std::mutex> lock(cache.mu);
    if (auto it = cache.limits.find(device); it != cache.limits.end()) return it->second;
  }
  DeviceLimits limits;
  CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&limits.sms, cudaDevAttrMultiProcessorCount, device));
  CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&limits.max_shared_per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const std::lock_guard<std::mutex> lock(cache.mu);
  cache.limits.emplace(device, limits);
  return limits;
}

absl::Status EnsureDynamicSharedMemory(const void* kernel, int bytes) {
  int device = 0;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  Cache& cache = GetCache();
  // Under the lock, so that the attribute and the cache agree.
  const std::lock_guard<std::mutex> lock(cache.mu);
  int& opted = cache.opted_in[{kernel, device}];
  if (bytes <= opted) return absl::OkStatus();
  CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  opted = bytes;
  return absl::OkStatus();
}

}  // namespace supra::cuda

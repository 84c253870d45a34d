// Facts about the current device that kernel launchers need on every launch
// (the SM count for persistent grids, the opt-in shared-memory limit), and the
// per-kernel opt-in to large dynamic shared memory: queried or set once per
// device, not per launch. Thread-safe.
#ifndef SUPRA_ENGINE_CUDA_DEVICE_LIMITS_H_
#define SUPRA_ENGINE_CUDA_DEVICE_LIMITS_H_

#include "absl/status/statusor.h"

namespace supra::cuda {

struct DeviceLimits {
  int sms = 0;                   // streaming multiprocessors
  int max_shared_per_block = 0;  // bytes of shared memory a block may opt in to
};

// The limits of the current device (cudaGetDevice), cached per device.
absl::StatusOr<DeviceLimits> CurrentDeviceLimits();

// Raises `kernel`'s dynamic shared-memory limit on the current device to at
// least `bytes` (cudaFuncAttributeMaxDynamicSharedMemorySize). The limit
// only grows: a launch asking for less than an earlier one keeps the larger
// limit, so concurrent launches of different sizes never undo each other.
absl::Status EnsureDynamicSharedMemory(const void* kernel, int bytes);

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_DEVICE_LIMITS_H_

// The CUDA backend in a build without CUDA (SUPRA_CUDA=OFF or no nvcc).
#include "engine/cuda/cuda_backend.h"

namespace supra {

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const ModelConfig&, const Checkpoint&,
                                                           const CudaBackendOptions&) {
  return absl::UnimplementedError("this build of supra-serve has no CUDA backend (configure with -DSUPRA_CUDA=ON)");
}

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackendWithRandomWeights(const ModelConfig&,
                                                                            const CudaBackendOptions&, uint64_t) {
  return absl::UnimplementedError("this build of supra-serve has no CUDA backend (configure with -DSUPRA_CUDA=ON)");
}

bool CudaDeviceAvailable() { return false; }

}  // namespace supra

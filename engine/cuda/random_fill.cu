#include "engine/cuda/random_fill.h"

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"

namespace supra::cuda {
namespace {

// SplitMix64 finaliser of (seed, index): independent values for every index.
__device__ __forceinline__ float UniformPm1(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // 24 bits -> [-1, 1)
}

template <typename T>
__global__ void FillUniformKernel(T* data, int64_t count, uint64_t seed, float center, float scale) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float v = center + scale * UniformPm1(seed, static_cast<uint64_t>(i));
    if constexpr (std::is_same_v<T, float>) {
      data[i] = v;
    } else {
      data[i] = __float2bfloat16(v);
    }
  }
}

template <typename T>
absl::Status Launch(T* data, int64_t count, uint64_t seed, float center, float scale, cudaStream_t stream) {
  if (count < 0 || (count > 0 && data == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat("random fill: bad buffer of ", count, " elements"));
  }
  if (count == 0) return absl::OkStatus();
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((count + kThreads - 1) / kThreads, 132 * 32);
  FillUniformKernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(data, count, seed, center, scale);
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

}  // namespace

absl::Status LaunchFillUniformBf16(__nv_bfloat16* data, int64_t count, uint64_t seed, float center, float scale,
                                   cudaStream_t stream) {
  return Launch(data, count, seed, center, scale, stream);
}

absl::Status LaunchFillUniformF32(float* data, int64_t count, uint64_t seed, float center, float scale,
                                  cudaStream_t stream) {
  return Launch(data, count, seed, center, scale, stream);
}

}  // namespace supra::cuda

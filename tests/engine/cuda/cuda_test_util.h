// Helpers for the CUDA parity tests: skip without a GPU, move vectors to and
// from the device, draw random inputs, compare against the CPU reference.
#ifndef SUPRA_TESTS_ENGINE_CUDA_CUDA_TEST_UTIL_H_
#define SUPRA_TESTS_ENGINE_CUDA_CUDA_TEST_UTIL_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/cuda/device_buffer.h"
#include "gtest/gtest.h"

namespace supra::cuda::testing {

inline bool HasGpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

// Skips the test cleanly on machines without a GPU (CI, the build machine).
#define SUPRA_SKIP_WITHOUT_GPU()                                  \
  do {                                                            \
    if (!::supra::cuda::testing::HasGpu()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

// Uniform in [lo, hi), never exactly zero-filled.
inline std::vector<float> RandomVector(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Rounds a value to bfloat16 and back (the CUDA backend's weight dtype).
inline float RoundBf16(float x) { return __bfloat162float(__float2bfloat16(x)); }

// RoundBf16 of every value.
inline std::vector<float> RoundToBf16(std::vector<float> v) {
  for (float& x : v) x = RoundBf16(x);
  return v;
}

template <typename T>
DeviceBuffer<T> Upload(const std::vector<T>& host) {
  auto buffer = DeviceBuffer<T>::Allocate(host.size(), "test input");
  EXPECT_TRUE(buffer.ok()) << buffer.status();
  EXPECT_EQ(cudaMemcpy(buffer->data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return *std::move(buffer);
}

inline DeviceBuffer<__nv_bfloat16> UploadBf16(const std::vector<float>& host) {
  std::vector<__nv_bfloat16> converted(host.size());
  for (size_t i = 0; i < host.size(); ++i) converted[i] = __float2bfloat16(host[i]);
  return Upload(converted);
}

template <typename T>
std::vector<T> Download(const DeviceBuffer<T>& buffer) {
  std::vector<T> host(buffer.size());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(host.data(), buffer.data(), buffer.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  return host;
}

inline std::vector<float> DownloadBf16(const DeviceBuffer<__nv_bfloat16>& buffer) {
  const std::vector<__nv_bfloat16> raw = Download(buffer);
  std::vector<float> out(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) out[i] = __bfloat162float(raw[i]);
  return out;
}

// Output buffer filled with NaN so that unwritten elements fail the comparison.
template <typename T>
DeviceBuffer<T> PoisonedBuffer(size_t n) {
  auto buffer = DeviceBuffer<T>::Allocate(n, "test output");
  EXPECT_TRUE(buffer.ok()) << buffer.status();
  EXPECT_EQ(cudaMemset(buffer->data(), 0xFF, n * sizeof(T)), cudaSuccess);  // all-ones bits: NaN in fp32/bf16
  return *std::move(buffer);
}

// max |got − want| / max |want|; NaN anywhere gives +inf.
inline double RelativeMaxError(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return INFINITY;
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    max_diff = std::max(max_diff, std::abs(static_cast<double>(got[i]) - want[i]));
    max_ref = std::max(max_ref, std::abs(static_cast<double>(want[i])));
  }
  return max_ref == 0 ? max_diff : max_diff / max_ref;
}

}  // namespace supra::cuda::testing

#endif  // SUPRA_TESTS_ENGINE_CUDA_CUDA_TEST_UTIL_H_

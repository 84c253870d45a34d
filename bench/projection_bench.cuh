// What the projection micro-benchmarks (gemv_bench, skinny_gemm_bench) share:
// random non-zero bf16 fill, CUDA-graph timing of many launches, the
// device-to-device copy bandwidth the floors are computed from, and the
// comparison of two outputs. Included by one .cu file per benchmark.
#ifndef SUPRA_BENCH_PROJECTION_BENCH_CUH_
#define SUPRA_BENCH_PROJECTION_BENCH_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_check.h"

namespace supra::bench {

// Weights are rotated over at least this many bytes of copies, so that every
// launch reads them from DRAM, not from the L2.
constexpr size_t kRotationBytes = size_t{256} << 20;  // > 4 × the L2
constexpr size_t kCopyBytes = size_t{2} << 30;        // the copy-bandwidth probe: 2 GiB read + 2 GiB written
constexpr double kBytesPerReplay = 3e9;               // weights streamed per graph replay (~0.7 ms at 4.3 TB/s)
constexpr int kWarmupReplays = 2;
constexpr int kTimedReplays = 7;

// Deterministic pseudo-random bf16 in [-1, 1): weights that are not zeros.
__global__ void FillBf16(__nv_bfloat16* p, size_t count, uint32_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed ^ static_cast<uint32_t>(i >> 32) * 40503u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = __float2bfloat16(static_cast<float>(h >> 8) * (2.0f / 16777216.0f) - 1.0f);
  }
}

inline void Fill(__nv_bfloat16* p, size_t count, uint32_t seed) {
  FillBf16<<<1024, 256>>>(p, count, seed);
  CHECK_CUDA(cudaGetLastError());
}

// Median milliseconds of one launch, from replays of a CUDA graph of
// `launches` launches (host launch overhead out of the picture).
inline double TimeGraph(cudaStream_t stream, const std::function<void(int)>& launch, int launches) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < launches; ++i) launch(i);
  CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
  CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < kWarmupReplays; ++i) CHECK_CUDA(cudaGraphLaunch(exec, stream));
  std::vector<double> ms;
  for (int i = 0; i < kTimedReplays; ++i) {
    CHECK_CUDA(cudaEventRecord(start, stream));
    CHECK_CUDA(cudaGraphLaunch(exec, stream));
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float elapsed = 0;
    CHECK_CUDA(cudaEventElapsedTime(&elapsed, start, stop));
    ms.push_back(elapsed);
  }
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  CHECK_CUDA(cudaGraphExecDestroy(exec));
  CHECK_CUDA(cudaGraphDestroy(graph));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2] / launches;
}

// Device-to-device copy bandwidth in GB/s, counting bytes read and written;
// the best of several 2 GiB copies.
inline double CopyBandwidth(cudaStream_t stream) {
  void *src = nullptr, *dst = nullptr;
  CHECK_CUDA(cudaMalloc(&src, kCopyBytes));
  CHECK_CUDA(cudaMalloc(&dst, kCopyBytes));
  Fill(static_cast<__nv_bfloat16*>(src), kCopyBytes / 2, 7);
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  CHECK_CUDA(cudaMemcpyAsync(dst, src, kCopyBytes, cudaMemcpyDeviceToDevice, stream));
  double best_ms = 1e30;
  for (int i = 0; i < 5; ++i) {
    CHECK_CUDA(cudaEventRecord(start, stream));
    CHECK_CUDA(cudaMemcpyAsync(dst, src, kCopyBytes, cudaMemcpyDeviceToDevice, stream));
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float elapsed = 0;
    CHECK_CUDA(cudaEventElapsedTime(&elapsed, start, stop));
    best_ms = std::min<double>(best_ms, elapsed);
  }
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  CHECK_CUDA(cudaFree(src));
  CHECK_CUDA(cudaFree(dst));
  return 2.0 * static_cast<double>(kCopyBytes) / (best_ms * 1e-3) / 1e9;
}

inline float Bf16ToFloat(uint16_t bits) {
  const uint32_t word = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &word, sizeof f);
  return f;
}

// max |a − b| / max |b|; infinity when a holds a non-finite value.
inline double RelativeMaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    ref = std::max(ref, std::abs(static_cast<double>(b[i])));
  }
  return ref > 0 ? diff / ref : diff;
}

// The device's name and its copy bandwidth (GB/s, read + write), printed.
struct DeviceInfo {
  std::string name;
  double copy_gbs = 0;
};
inline DeviceInfo PrintDevice(cudaStream_t stream) {
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const DeviceInfo info{prop.name, CopyBandwidth(stream)};
  std::printf("device: %s, %d SMs, L2 %d MB; device-to-device copy %.0f GB/s (read + write)\n", prop.name,
              prop.multiProcessorCount, prop.l2CacheSize >> 20, info.copy_gbs);
  return info;
}

// One decode projection: W [out, in], with the output dtype and accumulate
// mode the decoder uses for it.
struct ProjectionShape {
  const char* name;
  int64_t out, in;
  bool y_bf16;      // the decoder's output dtype for this projection
  bool accumulate;  // residual add into the fp32 stream
};

// Over `shapes` (each with int64_t `in` and `out`): the largest in and out,
// and the bytes of the weight pool that holds, for the largest shape, enough
// copies to rotate over kRotationBytes.
struct RotationPool {
  int64_t max_in = 0, max_out = 0;
  size_t bytes = 0;
};
template <typename Shapes>
RotationPool PlanRotationPool(const Shapes& shapes) {
  RotationPool pool;
  for (const auto& s : shapes) {
    pool.max_in = std::max(pool.max_in, s.in);
    pool.max_out = std::max(pool.max_out, s.out);
    const size_t bytes = static_cast<size_t>(s.out * s.in * 2);
    const size_t copies = std::max<size_t>(1, (kRotationBytes + bytes - 1) / bytes);
    pool.bytes = std::max(pool.bytes, copies * bytes);
  }
  return pool;
}

}  // namespace supra::bench

#endif  // SUPRA_BENCH_PROJECTION_BENCH_CUH_

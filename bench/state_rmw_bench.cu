// state_rmw_bench: what the decode attention's state traffic can reach on
// this GPU. One decode step of one layer reads and writes, for each of n
// sequences, the layer's H heads of F × Dv fp32 state in place (64 KiB per
// head at Mistral-SUPRA's sizes), at slot-strided addresses of the state pool
// ([slots, layers, H, F, Dv]). This times that access pattern with a plain
// streaming kernel (no arithmetic but a scale), against the same bytes copied
// out of place, and against cudaMemcpy. Per launch, with a pool much larger
// than L2 and the layer rotating so every launch reads cold state.
//
//   state_rmw_bench [--batch 64]
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench_check.h"

namespace {

constexpr int kHeads = 32, kLayers = 32;
constexpr int64_t kHeadFloats = 128 * 128;  // F × Dv
constexpr int kThreads = 256;
constexpr int kUnroll = 4;

// Chunk c of the launch is head c % H of sequence c / H; its address in the
// pool (or in `dst` when out of place) is that of (slot = sequence, layer).
__device__ __forceinline__ int64_t ChunkOffset(int64_t chunk, int layer) {
  const int64_t seq = chunk / kHeads, head = chunk % kHeads;
  return ((seq * kLayers + layer) * kHeads + head) * kHeadFloats;
}

// Every block streams whole chunks: kUnroll 16-byte loads in flight per
// thread, then the stores (in place when dst == src).
__global__ void __launch_bounds__(kThreads) StreamChunks(const float* src, float* dst, int64_t chunks, int layer) {
  constexpr int64_t kVectors = kHeadFloats / 4;
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    const auto* in = reinterpret_cast<const float4*>(src + ChunkOffset(chunk, layer));
    auto* out = reinterpret_cast<float4*>(dst + ChunkOffset(chunk, layer));
    for (int64_t v = threadIdx.x; v < kVectors; v += kThreads * kUnroll) {
      float4 x[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t i = v + u * kThreads;
        x[u] = i < kVectors ? __ldcs(in + i) : make_float4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t i = v + u * kThreads;
        if (i < kVectors) {
          x[u].x *= 0.999f, x[u].y *= 0.999f, x[u].z *= 0.999f, x[u].w *= 0.999f;
          __stcs(out + i, x[u]);
        }
      }
    }
  }
}

template <typename Launch>
double TimeLaunches(Launch&& launch, int reps) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i) launch(i);
  CHECK_CUDA(cudaEventRecord(start));
  for (int i = 0; i < reps; ++i) launch(i);
  CHECK_CUDA(cudaEventRecord(stop));
  CHECK_CUDA(cudaEventSynchronize(stop));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  return ms / 1e3 / reps;
}

}  // namespace

int main(int argc, char** argv) {
  int batch = 64;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
      batch = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: state_rmw_bench [--batch N]\n");
      return 2;
    }
  }
  int sms = 0;
  CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int64_t pool_floats = int64_t{batch} * kLayers * kHeads * kHeadFloats;
  const int64_t chunks = int64_t{batch} * kHeads;
  const double layer_bytes = 2.0 * chunks * kHeadFloats * sizeof(float);  // read + written
  float *pool = nullptr, *other = nullptr;
  CHECK_CUDA(cudaMalloc(&pool, pool_floats * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&other, pool_floats * sizeof(float)));
  CHECK_CUDA(cudaMemset(pool, 0, pool_floats * sizeof(float)));
  CHECK_CUDA(cudaMemset(other, 0, pool_floats * sizeof(float)));
  const int reps = 64;
  std::printf("batch %d: %.0f MB read + written per layer launch (%d sequences x %d heads x 64 KiB, in a %.1f GB pool)\n",
              batch, layer_bytes / 1e6, batch, kHeads, pool_floats * 4.0 / 1e9);
  for (const int blocks_per_sm : {1, 2, 4, 8}) {
    const int grid = sms * blocks_per_sm;
    const double in_place = TimeLaunches(
        [&](int i) { StreamChunks<<<grid, kThreads>>>(pool, pool, chunks, i % kLayers); }, reps);
    const double out_of_place = TimeLaunches(
        [&](int i) { StreamChunks<<<grid, kThreads>>>(pool, other, chunks, i % kLayers); }, reps);
    std::printf("  %d blocks/SM: in place %7.1f us (%6.0f GB/s)   out of place %7.1f us (%6.0f GB/s)\n",
                blocks_per_sm, in_place * 1e6, layer_bytes / in_place / 1e9, out_of_place * 1e6,
                layer_bytes / out_of_place / 1e9);
  }
  const size_t copy_bytes = static_cast<size_t>(chunks * kHeadFloats * sizeof(float));
  const double copy = TimeLaunches(
      [&](int i) {
        CHECK_CUDA(cudaMemcpyAsync(other + (i % 4) * (pool_floats / 4), pool + ((i + 1) % 4) * (pool_floats / 4),
                                   copy_bytes, cudaMemcpyDeviceToDevice));
      },
      reps);
  std::printf("  cudaMemcpy of the same bytes: %7.1f us (%6.0f GB/s)\n", copy * 1e6, layer_bytes / copy / 1e9);
  CHECK_CUDA(cudaGetLastError());
  CHECK_CUDA(cudaFree(pool));
  CHECK_CUDA(cudaFree(other));
  return 0;
}

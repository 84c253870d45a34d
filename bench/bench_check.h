// CHECK_CUDA for the benchmarks: a failed CUDA runtime call prints where and
// why, and the benchmark exits 1 (a benchmark has nothing to recover).
#ifndef SUPRA_BENCH_BENCH_CHECK_H_
#define SUPRA_BENCH_BENCH_CHECK_H_

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#define CHECK_CUDA(expr)                                                                              \
  do {                                                                                                \
    const cudaError_t error_ = (expr);                                                                \
    if (error_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(error_)); \
      std::exit(1);                                                                                   \
    }                                                                                                 \
  } while (0)

#endif  // SUPRA_BENCH_BENCH_CHECK_H_

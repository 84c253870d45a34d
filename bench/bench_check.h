// CHECK_CUDA and CHECK_CUBLAS for the benchmarks: a failed CUDA runtime or
// cuBLAS call prints where and why, and the benchmark exits 1 (a benchmark
// has nothing to recover).
#ifndef SUPRA_BENCH_BENCH_CHECK_H_
#define SUPRA_BENCH_BENCH_CHECK_H_

#include <cublas_v2.h>
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

#define CHECK_CUBLAS(expr)                                                                       \
  do {                                                                                           \
    const cublasStatus_t status_ = (expr);                                                       \
    if (status_ != CUBLAS_STATUS_SUCCESS) {                                                      \
      std::fprintf(stderr, "%s:%d: %s: cuBLAS status %d\n", __FILE__, __LINE__, #expr, status_); \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

#endif  // SUPRA_BENCH_BENCH_CHECK_H_

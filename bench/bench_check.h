// What every micro-benchmark shares: CHECK_CUDA and CHECK_CUBLAS (a failed
// CUDA runtime or cuBLAS call prints where and why, and the benchmark exits 1:
// a benchmark has nothing to recover), and the --json flag.
#ifndef SUPRA_BENCH_BENCH_CHECK_H_
#define SUPRA_BENCH_BENCH_CHECK_H_

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

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

namespace supra::bench {

// The command line of a micro-benchmark: [--json PATH]. Returns PATH or
// nullptr; exits with the usage on anything else.
inline const char* ParseJsonPath(int argc, char** argv) {
  const char* json_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--json PATH]\n", argv[0]);
      std::exit(2);
    }
  }
  return json_path;
}

}  // namespace supra::bench

#endif  // SUPRA_BENCH_BENCH_CHECK_H_

// gemv_bench: the decode projections (n = 1..16 rows) through LaunchGemv and
// through cuBLAS side by side, as GB/s of weights streamed and as a fraction of
// a device-to-device copy measured in the same run.
//
// Every Mistral-SUPRA projection shape, each with the output dtype and
// accumulate mode the decoder uses. LaunchGemv runs twice: with programmatic
// dependent launch (its default: each launch starts while the one before
// drains and prefetches its first weights) and serialised like cuBLAS. Each
// timing replays a CUDA graph of many launches (as the decoder's graphs do,
// so host launch overhead is out of the picture) that rotates among enough
// copies of the weights (≥ 256 MB in all) for every launch to read them from
// DRAM, not from the 60 MB L2. About 4 s on an H200.
//
//   gemv_bench [--json PATH]
//
// Build: nvcc -std=c++20 -arch=sm_90 -O3, linked with supra_cuda and cuBLAS
// (bench/CMakeLists.txt: add_executable(gemv_bench gemv_bench.cu) and
// target_link_libraries(gemv_bench PRIVATE supra_cuda CUDA::cublas CUDA::cudart)).
#include <cublas_v2.h>
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
#include "engine/cuda/gemv.h"
#include "projection_bench.cuh"

namespace {

using supra::bench::Bf16ToFloat;
using supra::bench::Fill;
using supra::bench::kBytesPerReplay;
using supra::bench::kRotationBytes;
using supra::bench::RelativeMaxDiff;
using supra::bench::TimeGraph;

using Shape = supra::bench::ProjectionShape;

// Mistral-SUPRA (D = 4096, H = 32, Hkv = 8, Dh = F = Dv = 128, FFN = 14336, V = 32000).
constexpr Shape kShapes[] = {
    {"in_proj", 6144, 4096, true, false},
    {"feature_map", 4096, 4096, false, false},
    {"feature_map_kv", 1024, 1024, false, false},
    {"out_proj", 4096, 4096, false, true},
    {"w12", 28672, 4096, true, false},
    {"w3", 4096, 14336, false, true},
    {"logits", 32000, 4096, false, false},
};
constexpr int kBatches[] = {1, 2, 4, 8, 16};

// The output of one launch as floats, [n, out] row-major (or, transposed,
// [out, n] read back into [n, out]).
std::vector<float> ReadOutput(const void* y, bool bf16, int64_t n, int64_t out, bool transposed) {
  const int64_t count = n * out;
  std::vector<float> values(count);
  if (bf16) {
    std::vector<uint16_t> raw(count);
    CHECK_CUDA(cudaMemcpy(raw.data(), y, count * 2, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < count; ++i) values[i] = Bf16ToFloat(raw[i]);
  } else {
    CHECK_CUDA(cudaMemcpy(values.data(), y, count * 4, cudaMemcpyDeviceToHost));
  }
  if (!transposed) return values;
  std::vector<float> result(count);
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t j = 0; j < n; ++j) result[j * out + r] = values[r * n + j];
  }
  return result;
}

struct Result {
  Shape shape;
  int n;
  double gemv_us, gemv_serial_us;  // with / without programmatic dependent launch
  double cublas_us, cublas_t_us;   // cublas_t: the transposed orientation (yᵀ)
  double check;                    // max |gemv − cuBLAS| / max |cuBLAS|, one launch, y = (no accumulate)
};

}  // namespace

int main(int argc, char** argv) {
  const char* json_path = supra::bench::ParseJsonPath(argc, argv);
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const supra::bench::DeviceInfo device = supra::bench::PrintDevice(stream);
  const double copy_gbs = device.copy_gbs;
  const supra::bench::RotationPool rotation = supra::bench::PlanRotationPool(kShapes);
  const int64_t max_in = rotation.max_in, max_out = rotation.max_out;
  const size_t pool_bytes = rotation.bytes;
  __nv_bfloat16 *pool = nullptr, *x = nullptr;
  void *y = nullptr, *y_ref = nullptr, *workspace = nullptr;
  constexpr size_t kWorkspaceBytes = size_t{32} << 20;
  CHECK_CUDA(cudaMalloc(&pool, pool_bytes));
  CHECK_CUDA(cudaMalloc(&x, 16 * max_in * 2));
  CHECK_CUDA(cudaMalloc(&y, 16 * max_out * 4));
  CHECK_CUDA(cudaMalloc(&y_ref, 16 * max_out * 4));
  CHECK_CUDA(cudaMalloc(&workspace, kWorkspaceBytes));
  Fill(pool, pool_bytes / 2, 1);
  Fill(x, 16 * max_in, 2);

  cublasHandle_t handle;
  CHECK_CUBLAS(cublasCreate(&handle));
  CHECK_CUBLAS(cublasSetStream(handle, stream));
  CHECK_CUBLAS(cublasSetWorkspace(handle, workspace, kWorkspaceBytes));

  std::vector<Result> results;
  for (const Shape& s : kShapes) {
    const size_t bytes = static_cast<size_t>(s.out * s.in * 2);
    const int copies = static_cast<int>(std::max<size_t>(1, (kRotationBytes + bytes - 1) / bytes));
    const int launches = std::max(copies, static_cast<int>(std::ceil(kBytesPerReplay / static_cast<double>(bytes))));
    auto weights = [&](int i) { return pool + static_cast<size_t>(i % copies) * (bytes / 2); };
    const cudaDataType y_type = s.y_bf16 ? CUDA_R_16BF : CUDA_R_32F;
    const float alpha = 1.0f, beta = s.accumulate ? 1.0f : 0.0f;
    for (const int n : kBatches) {
      Result r{s, n, 0, 0, 0, 0, 0};
      auto gemv_with = [&](int i, bool programmatic) {
        const absl::Status status = supra::cuda::LaunchGemv(x, s.in, weights(i), nullptr, y, s.out, s.y_bf16, n, s.in,
                                                            s.out, s.accumulate, stream, programmatic);
        if (!status.ok()) {
          std::fprintf(stderr, "LaunchGemv: %s\n", status.ToString().c_str());
          std::exit(1);
        }
      };
      auto gemv = [&](int i) { gemv_with(i, true); };
      auto gemv_serial = [&](int i) { gemv_with(i, false); };
      // yᵀ[out, n] (column-major, i.e. y[n, out] row-major) = W · xᵀ: what the decoder's cuBLAS path runs.
      auto cublas = [&](int i) {
        CHECK_CUBLAS(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, s.out, n, s.in, &alpha, weights(i), CUDA_R_16BF,
                                  s.in, x, CUDA_R_16BF, s.in, &beta, y, y_type, s.out, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
      };
      // The other orientation: y[n, out] column-major = x · Wᵀ (a transposed output).
      auto cublas_t = [&](int i) {
        CHECK_CUBLAS(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, s.out, s.in, &alpha, x, CUDA_R_16BF, s.in,
                                  weights(i), CUDA_R_16BF, s.in, &beta, y, y_type, n, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
      };
      r.gemv_us = TimeGraph(stream, gemv, launches) * 1e3;
      r.gemv_serial_us = TimeGraph(stream, gemv_serial, launches) * 1e3;
      r.cublas_us = TimeGraph(stream, cublas, launches) * 1e3;
      r.cublas_t_us = TimeGraph(stream, cublas_t, launches) * 1e3;

      // One plain (non-accumulating) launch of each, compared.
      const absl::Status status =
          supra::cuda::LaunchGemv(x, s.in, pool, nullptr, y, s.out, s.y_bf16, n, s.in, s.out, false, stream);
      if (!status.ok()) {
        std::fprintf(stderr, "LaunchGemv: %s\n", status.ToString().c_str());
        return 1;
      }
      const float zero = 0.0f;
      CHECK_CUBLAS(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, s.out, n, s.in, &alpha, pool, CUDA_R_16BF, s.in, x,
                                CUDA_R_16BF, s.in, &zero, y_ref, y_type, s.out, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
      CHECK_CUDA(cudaStreamSynchronize(stream));
      r.check = RelativeMaxDiff(ReadOutput(y, s.y_bf16, n, s.out, false), ReadOutput(y_ref, s.y_bf16, n, s.out, false));
      results.push_back(r);
    }
  }

  std::printf("\n%-14s %5s %5s %2s | %8s %5s %6s | %8s %6s | %8s %6s | %8s %6s | %6s %6s %8s\n", "shape", "out", "in",
              "n", "gemv us", "GB/s", "copy%", "serial", "copy%", "cublas", "copy%", "cublasT", "copy%", "vs cB",
              "serial", "check");
  auto fraction = [&](double gb, double us) { return 100 * gb / (us * 1e-6) / copy_gbs; };
  for (const Result& r : results) {
    const double gb = static_cast<double>(r.shape.out * r.shape.in * 2) / 1e9;
    const double best_cublas = std::min(r.cublas_us, r.cublas_t_us);
    std::printf(
        "%-14s %5lld %5lld %2d | %8.2f %5.0f %5.1f%% | %8.2f %5.1f%% | %8.2f %5.1f%% | %8.2f %5.1f%% | %5.2fx %5.2fx "
        "%8.1e\n",
        r.shape.name, static_cast<long long>(r.shape.out), static_cast<long long>(r.shape.in), r.n, r.gemv_us,
        gb / (r.gemv_us * 1e-6), fraction(gb, r.gemv_us), r.gemv_serial_us, fraction(gb, r.gemv_serial_us), r.cublas_us,
        fraction(gb, r.cublas_us), r.cublas_t_us, fraction(gb, r.cublas_t_us), best_cublas / r.gemv_us,
        best_cublas / r.gemv_serial_us, r.check);
  }
  std::printf(
      "copy%%: weight GB/s / copy GB/s; vs cB: best cuBLAS time / gemv time (programmatic launch), serial: the same "
      "for gemv serialised; check: max |gemv - cuBLAS| / max |cuBLAS|\n");

  if (json_path != nullptr) {
    FILE* f = std::fopen(json_path, "w");
    if (f == nullptr) {
      std::perror(json_path);
      return 1;
    }
    std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"copy_gbs\": %.1f,\n  \"results\": [\n", device.name.c_str(),
                 copy_gbs);
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      const double gb = static_cast<double>(r.shape.out * r.shape.in * 2) / 1e9;
      std::fprintf(
          f,
          "    {\"shape\": \"%s\", \"out\": %lld, \"in\": %lld, \"n\": %d, \"y_bf16\": %s, \"accumulate\": %s, "
          "\"gemv_us\": %.3f, \"gemv_gbs\": %.1f, \"gemv_copy_fraction\": %.4f, \"gemv_serial_us\": %.3f, "
          "\"cublas_us\": %.3f, "
          "\"cublas_gbs\": %.1f, \"cublas_t_us\": %.3f, \"cublas_t_gbs\": %.1f, \"check\": %.3e}%s\n",
          r.shape.name, static_cast<long long>(r.shape.out), static_cast<long long>(r.shape.in), r.n,
          r.shape.y_bf16 ? "true" : "false", r.shape.accumulate ? "true" : "false", r.gemv_us, gb / (r.gemv_us * 1e-6),
          gb / (r.gemv_us * 1e-6) / copy_gbs, r.gemv_serial_us, r.cublas_us, gb / (r.cublas_us * 1e-6), r.cublas_t_us,
          gb / (r.cublas_t_us * 1e-6), r.check, i + 1 < results.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
  }

  CHECK_CUBLAS(cublasDestroy(handle));
  CHECK_CUDA(cudaFree(pool));
  CHECK_CUDA(cudaFree(x));
  CHECK_CUDA(cudaFree(y));
  CHECK_CUDA(cudaFree(y_ref));
  CHECK_CUDA(cudaFree(workspace));
  CHECK_CUDA(cudaStreamDestroy(stream));
  return 0;
}

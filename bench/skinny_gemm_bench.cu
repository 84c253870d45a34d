// skinny_gemm_bench: the decode projections at batches of 16, 32 and 64 rows
// through LaunchSkinnyGemm and through cuBLAS (the cublasGemmEx call of
// gemm.cc) side by side, against the weight-read floor (weight bytes / the
// device-to-device copy bandwidth measured in the same run, read + write).
//
// The five Mistral-SUPRA projections that run on cuBLAS above n = 8, each with
// the output dtype and accumulate mode the decoder uses. LaunchSkinnyGemm runs
// three ways: its default (programmatic dependent launch, the first weight
// stages copied before the grid-dependency wait), programmatic launch without
// that prefetch, and serialised like cuBLAS. Each timing replays a CUDA graph
// of many back-to-back launches (as the decoder's graphs do, so host launch
// overhead is out of the picture) that rotates among enough copies of the
// weights (≥ 256 MB in all) for every launch to read them from DRAM, not from
// the 50-60 MB L2. A few seconds on an H200.
//
//   skinny_gemm_bench [--json PATH]
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
#include <vector>

#include "bench_check.h"
#include "engine/cuda/skinny_gemm.h"
#include "projection_bench.cuh"

namespace {

using supra::bench::Bf16ToFloat;
using supra::bench::Fill;
using supra::bench::kBytesPerReplay;
using supra::bench::kRotationBytes;
using supra::bench::RelativeMaxDiff;
using supra::bench::TimeGraph;

using Shape = supra::bench::ProjectionShape;

// Mistral-SUPRA (D = 4096, Hkv·F = 1024, FFN = 14336).
constexpr Shape kShapes[] = {
    {"out_proj", 4096, 4096, false, true},        {"feature_map_q", 4096, 4096, false, false},
    {"in_proj", 6144, 4096, true, false},         {"w3", 4096, 14336, false, true},
    {"feature_map_kv", 1024, 1024, false, false},
};
constexpr int kBatches[] = {16, 32, 64};
constexpr int kMaxBatch = 64;

// y[n, out] as floats.
std::vector<float> ReadOutput(const void* y, bool bf16, int64_t n, int64_t out) {
  const int64_t count = n * out;
  std::vector<float> values(count);
  if (bf16) {
    std::vector<uint16_t> raw(count);
    CHECK_CUDA(cudaMemcpy(raw.data(), y, count * 2, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < count; ++i) values[i] = Bf16ToFloat(raw[i]);
  } else {
    CHECK_CUDA(cudaMemcpy(values.data(), y, count * 4, cudaMemcpyDeviceToHost));
  }
  return values;
}

struct Result {
  Shape shape;
  int n;
  double skinny_us, no_prefetch_us, serial_us, cublas_us, floor_us;
  double check;  // max |skinny − cuBLAS| / max |cuBLAS|, one launch, y = (no accumulate)
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
  constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;  // as gemm.cc
  CHECK_CUDA(cudaMalloc(&pool, pool_bytes));
  CHECK_CUDA(cudaMalloc(&x, kMaxBatch * max_in * 2));
  CHECK_CUDA(cudaMalloc(&y, kMaxBatch * max_out * 4));
  CHECK_CUDA(cudaMalloc(&y_ref, kMaxBatch * max_out * 4));
  CHECK_CUDA(cudaMalloc(&workspace, kCublasWorkspaceBytes));
  CHECK_CUDA(cudaMemset(y, 0, kMaxBatch * max_out * 4));
  Fill(pool, pool_bytes / 2, 1);
  Fill(x, kMaxBatch * max_in, 2);

  cublasHandle_t handle;
  CHECK_CUBLAS(cublasCreate(&handle));
  CHECK_CUBLAS(cublasSetStream(handle, stream));
  CHECK_CUBLAS(cublasSetWorkspace(handle, workspace, kCublasWorkspaceBytes));
  CHECK_CUBLAS(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));

  std::vector<Result> results;
  for (const Shape& s : kShapes) {
    const size_t bytes = static_cast<size_t>(s.out * s.in * 2);
    const int copies = static_cast<int>(std::max<size_t>(1, (kRotationBytes + bytes - 1) / bytes));
    const int launches = std::max(copies, static_cast<int>(std::ceil(kBytesPerReplay / static_cast<double>(bytes))));
    auto weights = [&](int i) { return pool + static_cast<size_t>(i % copies) * (bytes / 2); };
    const cudaDataType y_type = s.y_bf16 ? CUDA_R_16BF : CUDA_R_32F;
    const float alpha = 1.0f, beta = s.accumulate ? 1.0f : 0.0f;
    for (const int n : kBatches) {
      Result r{s, n, 0, 0, 0, 0, 0, 0};
      auto skinny_with = [&](int i, const supra::cuda::SkinnyGemmOptions& options, bool accumulate) {
        const supra::cuda::GemmOperands op{.x = x,
                                           .x_stride = s.in,
                                           .w = weights(i),
                                           .y = y,
                                           .y_stride = s.out,
                                           .y_is_bf16 = s.y_bf16,
                                           .accumulate = accumulate,
                                           .n = n,
                                           .in = s.in,
                                           .out = s.out};
        const absl::Status status = supra::cuda::LaunchSkinnyGemm(op, stream, options);
        if (!status.ok()) {
          std::fprintf(stderr, "LaunchSkinnyGemm: %s\n", status.ToString().c_str());
          std::exit(1);
        }
      };
      auto skinny = [&](int i) { skinny_with(i, {}, s.accumulate); };
      auto no_prefetch = [&](int i) { skinny_with(i, {.prefetch_weights = false}, s.accumulate); };
      auto serial = [&](int i) { skinny_with(i, {.programmatic_launch = false}, s.accumulate); };
      // yᵀ[out, n] (column-major, i.e. y[n, out] row-major) = W · xᵀ: gemm.cc's call.
      auto cublas = [&](int i) {
        CHECK_CUBLAS(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, s.out, n, s.in, &alpha, weights(i), CUDA_R_16BF,
                                  s.in, x, CUDA_R_16BF, s.in, &beta, y, y_type, s.out, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
      };
      r.skinny_us = TimeGraph(stream, skinny, launches) * 1e3;
      r.no_prefetch_us = TimeGraph(stream, no_prefetch, launches) * 1e3;
      r.serial_us = TimeGraph(stream, serial, launches) * 1e3;
      r.cublas_us = TimeGraph(stream, cublas, launches) * 1e3;
      r.floor_us = static_cast<double>(bytes) / (copy_gbs * 1e9) * 1e6;

      // One plain (non-accumulating) launch of each, compared.
      skinny_with(0, {}, false);
      const float zero = 0.0f;
      CHECK_CUBLAS(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, s.out, n, s.in, &alpha, pool, CUDA_R_16BF, s.in, x,
                                CUDA_R_16BF, s.in, &zero, y_ref, y_type, s.out, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
      CHECK_CUDA(cudaStreamSynchronize(stream));
      r.check = RelativeMaxDiff(ReadOutput(y, s.y_bf16, n, s.out), ReadOutput(y_ref, s.y_bf16, n, s.out));
      results.push_back(r);
    }
  }

  std::printf("\n%-15s %5s %5s %2s | %7s %6s | %8s %6s | %8s %8s | %8s %6s | %6s %8s\n", "shape", "out", "in", "n",
              "floor", "", "skinny", "floor%", "no-pref", "serial", "cublas", "floor%", "speedup", "check");
  for (const Result& r : results) {
    std::printf("%-15s %5lld %5lld %2d | %7.2f %6s | %8.2f %5.1f%% | %8.2f %8.2f | %8.2f %5.1f%% | %5.2fx %8.1e\n",
                r.shape.name, static_cast<long long>(r.shape.out), static_cast<long long>(r.shape.in), r.n, r.floor_us,
                "", r.skinny_us, 100 * r.floor_us / r.skinny_us, r.no_prefetch_us, r.serial_us, r.cublas_us,
                100 * r.floor_us / r.cublas_us, r.cublas_us / r.skinny_us, r.check);
  }
  std::printf(
      "us per call. floor: weight bytes / copy bandwidth; skinny: LaunchSkinnyGemm (programmatic launch, weights "
      "prefetched before the wait); no-pref: without that prefetch; serial: without programmatic launch; speedup: "
      "cublas / skinny; check: max |skinny - cuBLAS| / max |cuBLAS|\n");

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
      std::fprintf(
          f,
          "    {\"shape\": \"%s\", \"out\": %lld, \"in\": %lld, \"n\": %d, \"y_bf16\": %s, \"accumulate\": %s, "
          "\"floor_us\": %.3f, \"skinny_us\": %.3f, \"skinny_no_prefetch_us\": %.3f, "
          "\"skinny_serial_us\": %.3f, \"cublas_us\": %.3f, \"check\": %.3e}%s\n",
          r.shape.name, static_cast<long long>(r.shape.out), static_cast<long long>(r.shape.in), r.n,
          r.shape.y_bf16 ? "true" : "false", r.shape.accumulate ? "true" : "false", r.floor_us, r.skinny_us,
          r.no_prefetch_us, r.serial_us, r.cublas_us, r.check, i + 1 < results.size() ? "," : "");
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

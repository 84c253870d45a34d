#include "engine/cuda/rms_norm.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/programmatic_launch.cuh"

namespace supra::cuda {
namespace {

constexpr int kMaxThreads = 1024;
// Threads per row, measured on an H200 at D = 4096: below kManyRows rows the
// chip is far from full and 512 threads (two float4 each) finish a row
// soonest (1.8 µs at n = 1, against 1.9 with 1024 and 2.3 with 256); from
// there on 256-thread blocks (four float4 each) keep more blocks per SM.
constexpr int kFewRowsThreads = 512;
constexpr int kManyRowsThreads = 256;
constexpr int64_t kManyRows = 128;
// float4 per thread held in registers (D <= 4 · 1024 · 4); 8 would spill
// under the 1024-thread register budget. Wider rows take the scalar kernel.
constexpr int kMaxVecs = 4;

// The block's sum of v, returned to every thread; blockDim.x is a multiple of
// 32. Call once per kernel (the shared scratch is not reused).
__device__ __forceinline__ double BlockSum(double v) {
  __shared__ double warp_sums[32];
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? warp_sums[lane] : 0.0;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// cpu::RmsNorm's element: float(x · inv_rms) · weight, rounded the same way.
__device__ __forceinline__ float Scaled(float x, double inv_rms, float weight) {
  return __fmul_rn(__double2float_rn(static_cast<double>(x) * inv_rms), weight);
}

template <typename OutT>
__device__ __forceinline__ void Store4(OutT* out, float4 v) {
  if constexpr (std::is_same_v<OutT, float>) {
    *reinterpret_cast<float4*>(out) = v;
  } else {
    __nv_bfloat162 pair[2] = {__floats2bfloat162_rn(v.x, v.y), __floats2bfloat162_rn(v.z, v.w)};
    *reinterpret_cast<uint2*>(out) = *reinterpret_cast<const uint2*>(pair);
  }
}

template <typename OutT>
__device__ __forceinline__ void Store1(OutT* out, float v) {
  if constexpr (std::is_same_v<OutT, float>) {
    *out = v;
  } else {
    *out = __float2bfloat16_rn(v);
  }
}

// One block per row (blockIdx.x); the row is held in registers, kVecs float4
// per thread, so x is read once. Requires dim % 4 == 0, 16-byte aligned rows
// of x, delta and weight, and 16-byte (fp32) or 8-byte (bf16) aligned rows of
// out. x and out are not __restrict__: the fp32 variant may run in place.
// Programmatic launch (programmatic_launch.cuh): only the norm weight is read
// before the wait for the previous kernel.
template <int kVecs, bool kAdd, typename OutT>
__global__ void __launch_bounds__(kMaxThreads)
    RmsNormVecKernel(float* x,  // [n, dim], fp32
                     int64_t x_stride,
                     const float* __restrict__ delta,  // [n, dim], fp32 (kAdd only)
                     int64_t delta_stride,
                     const float* __restrict__ weight,  // [dim], fp32
                     int dim4, double eps,
                     OutT* out,  // [n, dim]
                     int64_t out_stride) {
  constexpr bool kPrefetchWeight = kVecs <= 2;
  const int64_t row = blockIdx.x;
  float4* xr = reinterpret_cast<float4*>(x + row * x_stride);
  float4 v[kVecs], w[kVecs];
  if constexpr (kPrefetchWeight) {
    // Weights loaded now, before the previous kernel has finished, are there
    // by the reduction (one memory round trip less for decode's small
    // launches); with 4 float4 per thread they would spill under the
    // 1024-thread register budget.
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
      const int i = threadIdx.x + k * blockDim.x;
      if (i < dim4) w[k] = reinterpret_cast<const float4*>(weight)[i];
    }
  }
  WaitForPreviousKernel();
  AllowNextKernel();
  double sum = 0;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = threadIdx.x + k * blockDim.x;
    if (i < dim4) {
      v[k] = xr[i];
      if constexpr (kAdd) {
        const float4 d = reinterpret_cast<const float4*>(delta + row * delta_stride)[i];
        v[k].x += d.x;
        v[k].y += d.y;
        v[k].z += d.z;
        v[k].w += d.w;
        xr[i] = v[k];
      }
      // A float's square is exact in double, so only the additions round.
      sum += static_cast<double>(v[k].x) * v[k].x + static_cast<double>(v[k].y) * v[k].y +
             static_cast<double>(v[k].z) * v[k].z + static_cast<double>(v[k].w) * v[k].w;
    }
  }
  sum = BlockSum(sum);
  const double inv_rms = 1.0 / sqrt(sum / (4.0 * dim4) + eps);
  OutT* out_row = out + row * out_stride;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = threadIdx.x + k * blockDim.x;
    if (i < dim4) {
      if constexpr (!kPrefetchWeight) w[k] = reinterpret_cast<const float4*>(weight)[i];
      Store4(out_row + 4 * i, make_float4(Scaled(v[k].x, inv_rms, w[k].x), Scaled(v[k].y, inv_rms, w[k].y),
                                          Scaled(v[k].z, inv_rms, w[k].z), Scaled(v[k].w, inv_rms, w[k].w)));
    }
  }
}

// Any width and alignment: two passes over the row (the second mostly from
// L1/L2). Each thread reads back only the elements it wrote itself.
template <bool kAdd, typename OutT>
__global__ void __launch_bounds__(kMaxThreads)
    RmsNormScalarKernel(float* x,  // [n, dim], fp32
                        int64_t x_stride,
                        const float* __restrict__ delta,  // [n, dim], fp32 (kAdd only)
                        int64_t delta_stride,
                        const float* __restrict__ weight,  // [dim], fp32
                        int64_t dim, double eps,
                        OutT* out,  // [n, dim]
                        int64_t out_stride) {
  const int64_t row = blockIdx.x;
  float* xr = x + row * x_stride;
  WaitForPreviousKernel();
  AllowNextKernel();
  double sum = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if constexpr (kAdd) {
      v += delta[row * delta_stride + i];
      xr[i] = v;
    }
    sum += static_cast<double>(v) * v;
  }
  sum = BlockSum(sum);
  const double inv_rms = 1.0 / sqrt(sum / static_cast<double>(dim) + eps);
  OutT* out_row = out + row * out_stride;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) Store1(out_row + i, Scaled(xr[i], inv_rms, weight[i]));
}

bool Aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

int RoundUp32(int64_t v) { return static_cast<int>((v + 31) / 32 * 32); }

template <int kVecs, bool kAdd, typename OutT>
cudaError_t LaunchVec(int threads, int64_t n, float* x, int64_t x_stride, const float* delta, int64_t delta_stride,
                      const float* weight, int dim4, double eps, OutT* out, int64_t out_stride, cudaStream_t stream) {
  return LaunchProgrammatic(RmsNormVecKernel<kVecs, kAdd, OutT>, dim3(static_cast<unsigned>(n)), dim3(threads), 0,
                            stream, x, x_stride, delta, delta_stride, weight, dim4, eps, out, out_stride);
}

template <bool kAdd, typename OutT>
absl::Status Launch(const char* name, float* x, int64_t x_stride, const float* delta, int64_t delta_stride,
                    const float* weight, int64_t n, int64_t dim, double eps, OutT* out, int64_t out_stride,
                    cudaStream_t stream) {
  if (n < 0 || n > std::numeric_limits<int32_t>::max() || dim <= 0 || dim > std::numeric_limits<int32_t>::max() ||
      x_stride < dim || out_stride < dim || (kAdd && delta != nullptr && delta_stride < dim) || !(eps >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": unsupported sizes n=", n, " dim=", dim,
                                                   " x_stride=", x_stride, " out_stride=", out_stride, " eps=", eps));
  }
  if (n == 0) return absl::OkStatus();
  if (x == nullptr || weight == nullptr || out == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": null pointer"));
  }
  constexpr uintptr_t kOutAlign = std::is_same_v<OutT, float> ? 16 : 8;
  const bool vec = dim % 4 == 0 && dim / 4 <= kMaxThreads * kMaxVecs && Aligned(x, 16) && x_stride % 4 == 0 &&
                   Aligned(weight, 16) && Aligned(out, kOutAlign) && out_stride % 4 == 0 &&
                   (!kAdd || (Aligned(delta, 16) && delta_stride % 4 == 0));
  if (vec) {
    const int dim4 = static_cast<int>(dim / 4);
    const int preferred = n >= kManyRows ? kManyRowsThreads : kFewRowsThreads;
    int vecs = 1;
    while (vecs < kMaxVecs && (dim4 + vecs - 1) / vecs > preferred) vecs *= 2;
    while (vecs < kMaxVecs && (dim4 + vecs - 1) / vecs > kMaxThreads) vecs *= 2;
    const int threads = RoundUp32((dim4 + vecs - 1) / vecs);
    switch (vecs) {
      case 1:
        CUDA_RETURN_IF_ERROR((LaunchVec<1, kAdd>(threads, n, x, x_stride, delta, delta_stride, weight, dim4, eps, out,
                                                 out_stride, stream)));
        break;
      case 2:
        CUDA_RETURN_IF_ERROR((LaunchVec<2, kAdd>(threads, n, x, x_stride, delta, delta_stride, weight, dim4, eps, out,
                                                 out_stride, stream)));
        break;
      default:
        CUDA_RETURN_IF_ERROR((LaunchVec<4, kAdd>(threads, n, x, x_stride, delta, delta_stride, weight, dim4, eps, out,
                                                 out_stride, stream)));
        break;
    }
  } else {
    const int threads = static_cast<int>(std::min<int64_t>(kMaxThreads, RoundUp32(dim)));
    CUDA_RETURN_IF_ERROR(LaunchProgrammatic(RmsNormScalarKernel<kAdd, OutT>, dim3(static_cast<unsigned>(n)),
                                            dim3(threads), 0, stream, x, x_stride, delta, delta_stride, weight, dim,
                                            eps, out, out_stride));
  }
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

}  // namespace

absl::Status LaunchRmsNorm(const float* x, int64_t x_stride, const float* weight, int64_t n, int64_t dim, double eps,
                           __nv_bfloat16* out, int64_t out_stride, cudaStream_t stream) {
  // The kernel does not write x without kAdd.
  return Launch<false>("rms norm", const_cast<float*>(x), x_stride, nullptr, 0, weight, n, dim, eps, out, out_stride,
                       stream);
}

absl::Status LaunchAddRmsNorm(float* x, int64_t x_stride, const float* delta, int64_t delta_stride, const float* weight,
                              int64_t n, int64_t dim, double eps, __nv_bfloat16* out, int64_t out_stride,
                              cudaStream_t stream) {
  if (delta == nullptr) {
    return Launch<false>("add rms norm", x, x_stride, nullptr, 0, weight, n, dim, eps, out, out_stride, stream);
  }
  return Launch<true>("add rms norm", x, x_stride, delta, delta_stride, weight, n, dim, eps, out, out_stride, stream);
}

absl::Status LaunchRmsNormF32(const float* x, int64_t x_stride, const float* weight, int64_t n, int64_t dim, double eps,
                              float* y, int64_t y_stride, cudaStream_t stream) {
  if (y == x && y_stride != x_stride) {
    return absl::InvalidArgumentError("rms norm f32: in place needs y_stride == x_stride");
  }
  return Launch<false>("rms norm f32", const_cast<float*>(x), x_stride, nullptr, 0, weight, n, dim, eps, y, y_stride,
                       stream);
}

}  // namespace supra::cuda

#include "engine/cuda/swiglu.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/programmatic_launch.cuh"
#include "engine/cuda/silu.cuh"
#include "engine/cuda/w12_layout.h"

namespace supra::cuda {
namespace {

constexpr int kMaxThreads = 256;
// Below this many rows, smaller blocks spread one row over more SMs (at
// FFN = 14336 one row is 14 blocks of 128 threads instead of 7 of 256).
constexpr int64_t kManyRows = 264;
// Columns of one row spread over gridDim.y (at most 65535 blocks).
constexpr int64_t kMaxFfn = int64_t{1} << 23;

// Rows on blockIdx.x, column chunks on blockIdx.y. Vector path: one group of
// the interleaved layout per thread, 8 values (16 bytes) of a, of b and of
// out. Requires ffn % 8 == 0 (whole groups) and 16-byte aligned ab and out.
// Programmatic launch (programmatic_launch.cuh): nothing is read before the
// wait.
__global__ void __launch_bounds__(kMaxThreads)
    SwiGluVec8Kernel(const __nv_bfloat16* ab,  // [n, 2·ffn], bf16, interleaved; plain loads (written by the
                                               // previous kernel)
                     int64_t ffn,
                     __nv_bfloat16* __restrict__ out) {  // [n, ffn], bf16
  const int64_t row = blockIdx.x;
  const int64_t group = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;  // columns 8·group ..
  WaitForPreviousKernel();
  AllowNextKernel();
  if (group * kW12Group >= ffn) return;
  const __nv_bfloat16* group_ab = ab + row * 2 * ffn + 2 * kW12Group * group;
  const uint4 a_raw = reinterpret_cast<const uint4*>(group_ab)[0];
  const uint4 b_raw = reinterpret_cast<const uint4*>(group_ab)[1];
  const __nv_bfloat162* a2 = reinterpret_cast<const __nv_bfloat162*>(&a_raw);
  const __nv_bfloat162* b2 = reinterpret_cast<const __nv_bfloat162*>(&b_raw);
  uint4 out_raw;
  __nv_bfloat162* o2 = reinterpret_cast<__nv_bfloat162*>(&out_raw);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 a = __bfloat1622float2(a2[j]), b = __bfloat1622float2(b2[j]);
    o2[j] = __floats2bfloat162_rn(SiluMul(a.x, b.x), SiluMul(a.y, b.y));
  }
  reinterpret_cast<uint4*>(out + row * ffn)[group] = out_raw;
}

// Any width and alignment: one value per thread.
__global__ void __launch_bounds__(kMaxThreads)
    SwiGluScalarKernel(const __nv_bfloat16* ab,  // [n, 2·ffn], bf16, interleaved; plain loads
                       int64_t ffn,
                       __nv_bfloat16* __restrict__ out) {  // [n, ffn], bf16
  const int64_t row = blockIdx.x;
  const int64_t col = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  WaitForPreviousKernel();
  AllowNextKernel();
  if (col >= ffn) return;
  const __nv_bfloat16* row_ab = ab + row * 2 * ffn;
  const float a = __bfloat162float(row_ab[InterleavedW12Row(col, false, ffn)]);
  const float b = __bfloat162float(row_ab[InterleavedW12Row(col, true, ffn)]);
  out[row * ffn + col] = __float2bfloat16_rn(SiluMul(a, b));
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

absl::Status LaunchSwiGlu(const __nv_bfloat16* ab, int64_t n, int64_t ffn, __nv_bfloat16* out, cudaStream_t stream) {
  if (n < 0 || n > std::numeric_limits<int32_t>::max() || ffn <= 0 || ffn > kMaxFfn) {
    return absl::InvalidArgumentError(absl::StrCat("swiglu: unsupported sizes n=", n, " ffn=", ffn));
  }
  if (n == 0) return absl::OkStatus();
  if (ab == nullptr || out == nullptr) return absl::InvalidArgumentError("swiglu: null pointer");
  const bool vec = ffn % 8 == 0 && Aligned16(ab) && Aligned16(out);
  const int64_t units = vec ? ffn / 8 : ffn;
  const int64_t max_threads = n >= kManyRows ? kMaxThreads : 128;
  const int threads = static_cast<int>(std::min<int64_t>(max_threads, (units + 31) / 32 * 32));
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>((units + threads - 1) / threads));
  if (vec) {
    CUDA_RETURN_IF_ERROR(LaunchProgrammatic(SwiGluVec8Kernel, grid, dim3(threads), 0, stream, ab, ffn, out));
  } else {
    CUDA_RETURN_IF_ERROR(LaunchProgrammatic(SwiGluScalarKernel, grid, dim3(threads), 0, stream, ab, ffn, out));
  }
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

}  // namespace supra::cuda

#include "engine/cuda/embedding.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/programmatic_launch.cuh"

namespace supra::cuda {
namespace {

constexpr int kMaxThreads = 256;
// Columns of one row are spread over gridDim.y (at most 65535 blocks), so the
// width is bounded; 2^23 is far beyond any model width.
constexpr int64_t kMaxDim = int64_t{1} << 23;

// Rows go on blockIdx.x (up to 2^31 − 1), column chunks on blockIdx.y: even a
// single row spreads over several blocks, so decode (n = 1..8) does not wait
// on one block's serial loads.
// Vector path: 8 bf16 (16 bytes) in, 8 floats (two 16-byte stores) out per
// thread. Requires dim % 8 == 0 and 16-byte aligned table and out.
// Programmatic launch (programmatic_launch.cuh): every thread waits for the
// previous kernel before it reads the tokens or writes out.
__global__ void __launch_bounds__(kMaxThreads)
    EmbeddingGatherVec8Kernel(const __nv_bfloat16* __restrict__ table,  // [vocab, dim], bf16
                              int64_t vocab, int64_t dim,
                              const int32_t* __restrict__ tokens,  // [n]
                              float* __restrict__ out) {           // [n, dim], fp32
  const int64_t row = blockIdx.x;
  const int64_t unit = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;  // 8 columns each
  WaitForPreviousKernel();
  AllowNextKernel();
  if (unit * 8 >= dim) return;
  const int32_t token = tokens[row];
  float4* dst = reinterpret_cast<float4*>(out + row * dim) + 2 * unit;
  if (token < 0 || token >= vocab) {
    const float nan = __int_as_float(0x7fffffff);
    dst[0] = make_float4(nan, nan, nan, nan);
    dst[1] = dst[0];
    return;
  }
  const uint4 raw = reinterpret_cast<const uint4*>(table + token * dim)[unit];
  const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&raw);
  const float2 p0 = __bfloat1622float2(pairs[0]), p1 = __bfloat1622float2(pairs[1]);
  const float2 p2 = __bfloat1622float2(pairs[2]), p3 = __bfloat1622float2(pairs[3]);
  dst[0] = make_float4(p0.x, p0.y, p1.x, p1.y);
  dst[1] = make_float4(p2.x, p2.y, p3.x, p3.y);
}

// Any width or alignment: one element per thread.
__global__ void __launch_bounds__(kMaxThreads)
    EmbeddingGatherScalarKernel(const __nv_bfloat16* __restrict__ table,  // [vocab, dim], bf16
                                int64_t vocab, int64_t dim,
                                const int32_t* __restrict__ tokens,  // [n]
                                float* __restrict__ out) {           // [n, dim], fp32
  const int64_t row = blockIdx.x;
  const int64_t col = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  WaitForPreviousKernel();
  AllowNextKernel();
  if (col >= dim) return;
  const int32_t token = tokens[row];
  out[row * dim + col] =
      (token < 0 || token >= vocab) ? __int_as_float(0x7fffffff) : __bfloat162float(table[token * dim + col]);
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

absl::Status LaunchEmbeddingGather(const __nv_bfloat16* table, int64_t vocab, int64_t dim, const int32_t* tokens,
                                   int64_t n, float* out, cudaStream_t stream) {
  if (vocab <= 0 || vocab > std::numeric_limits<int32_t>::max() || dim <= 0 || dim > kMaxDim || n < 0 ||
      n > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedding gather: unsupported sizes vocab=", vocab, " dim=", dim, " n=", n));
  }
  if (n == 0) return absl::OkStatus();
  if (table == nullptr || tokens == nullptr || out == nullptr) {
    return absl::InvalidArgumentError("embedding gather: null pointer");
  }
  const bool vec = dim % 8 == 0 && Aligned16(table) && Aligned16(out);
  const int64_t units = vec ? dim / 8 : dim;
  const int threads = static_cast<int>(std::min<int64_t>(kMaxThreads, (units + 31) / 32 * 32));
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>((units + threads - 1) / threads));
  if (vec) {
    CUDA_RETURN_IF_ERROR(
        LaunchProgrammatic(EmbeddingGatherVec8Kernel, grid, dim3(threads), 0, stream, table, vocab, dim, tokens, out));
  } else {
    CUDA_RETURN_IF_ERROR(LaunchProgrammatic(EmbeddingGatherScalarKernel, grid, dim3(threads), 0, stream, table, vocab,
                                            dim, tokens, out));
  }
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

}  // namespace supra::cuda

// Device helpers and host-side argument checks shared by
// recurrent_attention.cu and chunked_attention.cu. Included by those .cu files
// only (it has device code).
#ifndef SUPRA_ENGINE_CUDA_ATTENTION_COMMON_CUH_
#define SUPRA_ENGINE_CUDA_ATTENTION_COMMON_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/cuda/attention_common.h"

namespace supra::cuda::attention_internal {

__device__ __forceinline__ float ToFloat(float x) { return x; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T FromFloat(float x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else {
    return __float2bfloat16_rn(x);
  }
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Element offset of a sequence's state of one head in the pool, in 64 bits.
template <typename T>
__device__ __forceinline__ int64_t StateOffset(const StatePoolLayer<T>& pool, int slot, int heads, int head,
                                               int features, int value_dim) {
  return ((static_cast<int64_t>(slot) * pool.layers + pool.layer) * heads + head) * static_cast<int64_t>(features) *
         value_dim;
}

// The checks both launchers share. `rows` is n (decode) or the prefill rows.
template <typename T>
absl::Status ValidateAttentionArgs(const char* op, const AttentionDims& dims, const void* q, const void* k,
                                   const void* v, int64_t v_stride, const float* gammas, const StatePoolLayer<T>& pool,
                                   const void* out, int64_t rows) {
  const int h = dims.heads, hk = dims.key_heads, hkv = dims.value_heads;
  if (h <= 0 || h > 65535 || hk <= 0 || hkv <= 0 || h % hk != 0 || h % hkv != 0 || dims.features <= 0 ||
      dims.value_dim <= 0 || dims.value_dim > kMaxAttentionValueDim) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": unsupported head layout H=", h, " Hk=", hk, " Hkv=", hkv, " F=", dims.features,
                     " Dv=", dims.value_dim, " (H divisible by Hk and Hkv, 1 <= Dv <= ", kMaxAttentionValueDim, ")"));
  }
  if (rows < 0 || rows > (int64_t{1} << 31) - 1) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": unsupported row count ", rows));
  }
  if (v_stride < int64_t{hkv} * dims.value_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": v row stride ", v_stride, " is below Hkv·Dv = ", int64_t{hkv} * dims.value_dim));
  }
  if (pool.slots <= 0 || pool.layers <= 0 || pool.layer < 0 || pool.layer >= pool.layers) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": bad state pool view: slots=", pool.slots, " layers=", pool.layers, " layer=", pool.layer));
  }
  if (rows == 0) return absl::OkStatus();  // nothing to launch: pointers may be null
  if (q == nullptr || k == nullptr || v == nullptr || gammas == nullptr || pool.data == nullptr || out == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": null pointer"));
  }
  return absl::OkStatus();
}

// Split cluster barrier: arrive (release: this thread's shared-memory writes
// become visible to the cluster) and wait (acquire), with local work between.
__device__ __forceinline__ void ClusterArrive() {
  asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void ClusterWait() { asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory"); }

// A 16-byte asynchronous global-to-shared copy (cp.async.cg); with `valid`
// false it reads nothing and fills the 16 bytes with zeros (rows past a
// chunk's end). Complete after CpAsyncCommit() and CpAsyncWaitAll().
__device__ __forceinline__ void CpAsync16(void* smem_dst, const void* global_src, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(global_src), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void CpAsyncWaitAll() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

}  // namespace supra::cuda::attention_internal

#endif  // SUPRA_ENGINE_CUDA_ATTENTION_COMMON_CUH_

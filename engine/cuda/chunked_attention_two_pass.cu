// The two-pass chunked attention: the workspace, the prep kernel (sub-chunk
// index), pass 1 (states) and the launch of both passes. Pass 2 is in
// chunked_attention_outputs.cu; the design is in chunked_attention_two_pass.h.
#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/cuda/attention_common.cuh"
#include "engine/cuda/chunked_attention_mma.cuh"
#include "engine/cuda/chunked_attention_two_pass.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_limits.h"
#include "engine/util/status_macros.h"

namespace supra::cuda {
namespace attention_internal {
namespace {

constexpr int kThreads = 256;
constexpr int kT = kChunkedAttentionSubChunk;  // rows of one sub-chunk
constexpr int kTD = 32;                        // Dv columns per pass-1 block
constexpr int kLdV = 40;                       // bf16 per V row: 20 words, B fragments conflict-free
constexpr int kDecaySlots = 80;                // γ^t for t = 0..64, padded to 16 bytes
constexpr int kPrepThreads = 1024;
// Largest pass-2 shared memory: the H200's (sm_90) opt-in limit per block.
constexpr size_t kMaxSmemPerBlock = 227 * 1024;
static_assert(kT == 64 && kTD == 32 && kThreads == 256, "the warp roles below assume these sizes");

// Byte offsets into pass 1's dynamic shared memory, each a multiple of 16;
// the two buffers of K̃ and V follow each other.
struct StatesLayout {
  int f16;      // F rounded up to 16 (padding columns of K̃ are zero)
  int ld_k;     // floats per row of K̃: f16 + 4 ≡ 4 or 20 mod 32, fragment loads conflict-free
  int k_bytes;  // one K̃ buffer
  int k;        // 2 × [kT, ld_k] fp32
  int v;        // 2 × [kT, kLdV] bf16
  int decay;    // [kDecaySlots] fp32
  int total;
};

constexpr int kVBytes = kT * kLdV * 2;  // one V buffer

__host__ __device__ inline StatesLayout MakeStatesLayout(int f_dim) {
  StatesLayout l{};
  l.f16 = (f_dim + 15) / 16 * 16;
  l.ld_k = l.f16 + 4;
  l.k_bytes = kT * l.ld_k * 4;
  l.k = 0;
  l.v = l.k + 2 * l.k_bytes;
  l.decay = l.v + 2 * kVBytes;
  l.total = l.decay + kDecaySlots * 4;
  return l;
}

// One block of kPrepThreads: per chunk its first sub-chunk in the launch
// (exclusive prefix of SubChunksOf) and per sub-chunk its chunk. Entries past
// `capacity` are not written (the host plans launches that fit).
__global__ void __launch_bounds__(kPrepThreads)
    SubChunkIndexKernel(const AttentionChunkDesc* __restrict__ chunks,  // [num_chunks]
                        int num_chunks, int rows, int slots, int64_t capacity,
                        int32_t* __restrict__ first_sub_chunk,    // [num_chunks]
                        int32_t* __restrict__ sub_chunk_chunk) {  // [capacity]
  __shared__ int warp_totals[kPrepThreads / 32];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  int carry = 0;
  for (int base = 0; base < num_chunks; base += kPrepThreads) {
    const int c = base + tid;
    const int count = c < num_chunks ? SubChunksOf(chunks[c], rows, slots) : 0;
    // Inclusive scan within the warp, then over the warp totals.
    int incl = count;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const int x = __shfl_up_sync(0xffffffffu, incl, offset);
      if (lane >= offset) incl += x;
    }
    if (lane == 31) warp_totals[warp] = incl;
    __syncthreads();
    int before = 0, total = 0;
    for (int w = 0; w < kPrepThreads / 32; ++w) {
      before += w < warp ? warp_totals[w] : 0;
      total += warp_totals[w];
    }
    const int first = carry + before + incl - count;
    if (c < num_chunks) {
      first_sub_chunk[c] = first;
      for (int s = 0; s < count; ++s) {
        if (first + s < capacity) sub_chunk_chunk[first + s] = c;
      }
    }
    carry += total;
    __syncthreads();  // warp_totals reused
  }
}

// Pass 1. Grid (tiles, H, chunks): block (tile, head, chunk) carries columns
// [32·tile, +32) of the head's state through the chunk's sub-chunks, writing
// the state entering each to the workspace. Two blocks per SM.
// kFixedF16: F rounded up to 16 known at compile time (128), or 0 for any F.
template <typename StateT, int kFixedF16>
__global__ void __launch_bounds__(kThreads, 2)
    ChunkedAttentionStatesKernel(AttentionDims dims,
                                 const float* __restrict__ k,          // [rows, Hk·F]
                                 const __nv_bfloat16* __restrict__ v,  // [rows, v_stride]
                                 int64_t v_stride,
                                 const float* __restrict__ gammas,               // [H]
                                 const AttentionChunkDesc* __restrict__ chunks,  // [chunks]
                                 int rows, bool vec_k, bool vec_v,
                                 StatePoolLayer<StateT> pool,                  // [slots, layers, H, F, Dv]
                                 const int32_t* __restrict__ first_sub_chunk,  // [chunks]
                                 float* __restrict__ sub_chunk_states,         // [capacity, H, F16, Dv8]
                                 int64_t capacity) {
  extern __shared__ __align__(16) unsigned char smem[];
  const AttentionChunkDesc chunk = chunks[blockIdx.z];
  if (SubChunksOf(chunk, rows, pool.slots) == 0) return;
  const int heads = dims.heads, f_dim = dims.features, dv = dims.value_dim;
  const StatesLayout lay = MakeStatesLayout(kFixedF16 > 0 ? kFixedF16 : f_dim);
  const int f16 = kFixedF16 > 0 ? kFixedF16 : lay.f16;
  const int ld = kFixedF16 > 0 ? kFixedF16 + 4 : lay.ld_k;
  const int dv8 = (dv + 7) / 8 * 8;
  auto k_s = [&](int buf) { return reinterpret_cast<float*>(smem + lay.k + buf * lay.k_bytes); };
  auto v_s = [&](int buf) { return reinterpret_cast<__nv_bfloat16*>(smem + lay.v + buf * kVBytes); };
  float* decay = reinterpret_cast<float*>(smem + lay.decay);

  const int head = blockIdx.y, d0 = blockIdx.x * kTD;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, tig = lane % 4;
  const int f_row = 16 * warp + g;  // state rows f_row and f_row + 8
  const bool owns_state = 16 * warp < f16;

  const float gamma = gammas[head];
  if (tid <= kT) {
    decay[tid] = tid == 0 ? 1.0f : static_cast<float>(exp(static_cast<double>(tid) * log(static_cast<double>(gamma))));
  }
  if (vec_k && f16 > f_dim) {  // padding columns, never written by the copies
    const int pad = f16 - f_dim;
    for (int e = tid; e < 2 * kT * pad; e += kThreads) {
      const int buf = e / (kT * pad), i = e % (kT * pad) / pad, f = f_dim + e % pad;
      k_s(buf)[i * ld + f] = 0.0f;
    }
  }
  StateT* state = pool.data + StateOffset(pool, chunk.slot, heads, head, f_dim, dv);  // [F, Dv]
  float p[4][4];  // state rows f_row (+8), columns d0 + 8t + 2·tig (+1): C-fragment layout
#pragma unroll
  for (int t = 0; t < 4; ++t) {
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int f = f_row + (c / 2) * 8, d = d0 + 8 * t + 2 * tig + c % 2;
      p[t][c] = owns_state && f < f_dim && d < dv ? ToFloat(state[static_cast<int64_t>(f) * dv + d]) : 0.0f;
    }
  }

  const int64_t ldk = static_cast<int64_t>(dims.key_heads) * f_dim;
  const float* k_base = k + chunk.row_begin * ldk + static_cast<int64_t>(head / (heads / dims.key_heads)) * f_dim;
  const __nv_bfloat16* v_base =
      v + chunk.row_begin * v_stride + static_cast<int64_t>(head / (heads / dims.value_heads)) * dv;
  const int first = first_sub_chunk[blockIdx.z];

  auto load_sub_chunk = [&](int s0, int buf) {
    const int len = min(kT, chunk.length - s0);
    LoadQkTile<kThreads>(k_base + s0 * ldk, ldk, len, f_dim, f16, ld, vec_k, k_s(buf));
    LoadVTile<kThreads>(v_base + s0 * v_stride, v_stride, len, d0, dv, kTD, kLdV, vec_v, v_s(buf));
    CpAsyncCommit();
  };
  load_sub_chunk(0, 0);

  for (int s0 = 0, it = 0; s0 < chunk.length; s0 += kT, ++it) {
    const int buf = it % 2, len = min(kT, chunk.length - s0);
    CpAsyncWaitAll();
    // This sub-chunk's tiles are complete and every thread is done with the
    // previous sub-chunk (its buffer is free).
    __syncthreads();
    if (s0 + kT < chunk.length) load_sub_chunk(s0 + kT, buf ^ 1);

    // The state entering this sub-chunk, for pass 2 (padding rows and
    // columns included: they are zero).
    if (owns_state && first + it < capacity) {
      float* dst = sub_chunk_states + ((static_cast<int64_t>(first) + it) * heads + head) * f16 * dv8;
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const int d = d0 + 8 * t + 2 * tig;
        if (d0 + 8 * t < dv8) {
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            *reinterpret_cast<float2*>(dst + static_cast<int64_t>(f_row + 8 * r) * dv8 + d) =
                make_float2(p[t][2 * r], p[t][2 * r + 1]);
          }
        }
      }
    }

    // P ← γ^len P + Σ_j (γ^{len−j} k̃_j)ᵀ v_j for this warp's 16 state rows
    // (rows j >= len of K̃ and V are zero).
    if (owns_state) {
      const float* ks = k_s(buf);
      const uint16_t* vs = reinterpret_cast<const uint16_t*>(v_s(buf));
      float u[4][4] = {};
      for (int j0 = 0; j0 < len; j0 += 8) {
        const float w0 = decay[max(len - j0 - tig, 0)], w1 = decay[max(len - j0 - tig - 4, 0)];
        const int k0 = (j0 + tig) * ld + 16 * warp + g, k1 = k0 + 4 * ld;
        uint32_t ah[4], al[4];
        SplitTf32(w0 * ks[k0], ah[0], al[0]);
        SplitTf32(w0 * ks[k0 + 8], ah[1], al[1]);
        SplitTf32(w1 * ks[k1], ah[2], al[2]);
        SplitTf32(w1 * ks[k1 + 8], ah[3], al[3]);
#pragma unroll
        for (int t = 0; t < 4; ++t) {
          const int e0 = (j0 + tig) * kLdV + 8 * t + g;
          Mma2(u[t], ah, al, Bf16Bits(vs[e0]), Bf16Bits(vs[e0 + 4 * kLdV]));
        }
      }
      const float g_len = decay[len];
#pragma unroll
      for (int t = 0; t < 4; ++t) {
#pragma unroll
        for (int c = 0; c < 4; ++c) p[t][c] = fmaf(g_len, p[t][c], u[t][c]);
      }
    }
  }

  if (owns_state) {
#pragma unroll
    for (int t = 0; t < 4; ++t) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int f = f_row + (c / 2) * 8, d = d0 + 8 * t + 2 * tig + c % 2;
        if (f < f_dim && d < dv) state[static_cast<int64_t>(f) * dv + d] = FromFloat<StateT>(p[t][c]);
      }
    }
  }
}

template <typename StateT>
absl::Status LaunchStates(const AttentionDims& dims, const float* k, const __nv_bfloat16* v, int64_t v_stride,
                          const float* gammas, const AttentionChunkDesc* chunks, int num_chunks, int rows,
                          const StatePoolLayer<StateT>& state, cudaStream_t stream,
                          ChunkedAttentionWorkspace& workspace, int64_t sub_chunks) {
  const int64_t capacity = workspace.StateCapacity(dims);
  if (sub_chunks < 1 || sub_chunks > capacity || num_chunks < 1 || num_chunks >= kTwoPassMaxChunks) {
    return absl::InternalError(absl::StrCat("chunked attention: two-pass launch of ", sub_chunks,
                                            " sub-chunks for a workspace of ", capacity));
  }
  int32_t* first_sub_chunk = TwoPassFirstSubChunk(workspace);
  int32_t* sub_chunk_chunk = TwoPassSubChunkChunk(workspace);
  SubChunkIndexKernel<<<1, kPrepThreads, 0, stream>>>(chunks, num_chunks, rows, state.slots, sub_chunks,
                                                      first_sub_chunk, sub_chunk_chunk);
  CUDA_RETURN_IF_LAUNCH_ERROR();

  const StatesLayout lay = MakeStatesLayout(dims.features);
  const int tiles = (dims.value_dim + kTD - 1) / kTD;
  const bool vec_k = dims.features % 4 == 0 && Aligned16(k);
  const bool vec_v = dims.value_dim % 8 == 0 && v_stride % 8 == 0 && Aligned16(v);
  auto* kernel = lay.f16 == 128 ? &ChunkedAttentionStatesKernel<StateT, 128> : &ChunkedAttentionStatesKernel<StateT, 0>;
  const size_t smem_bytes = static_cast<size_t>(lay.total);
  RETURN_IF_ERROR(EnsureDynamicSharedMemory(reinterpret_cast<const void*>(kernel), static_cast<int>(smem_bytes)));
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(dims.heads), static_cast<unsigned>(num_chunks));
  kernel<<<grid, kThreads, smem_bytes, stream>>>(dims, k, v, v_stride, gammas, chunks, rows, vec_k, vec_v, state,
                                                 first_sub_chunk, workspace.states.data(), sub_chunks);
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

template <typename StateT>
absl::Status LaunchTwoPass(const AttentionDims& dims, const float* q, const float* k, const __nv_bfloat16* v,
                           int64_t v_stride, const float* gammas, const AttentionChunkDesc* chunks, int num_chunks,
                           int rows, const StatePoolLayer<StateT>& state, __nv_bfloat16* out, cudaStream_t stream,
                           ChunkedAttentionWorkspace& workspace, int64_t sub_chunks) {
  absl::Status status =
      LaunchStates(dims, k, v, v_stride, gammas, chunks, num_chunks, rows, state, stream, workspace, sub_chunks);
  if (!status.ok()) return status;
  return LaunchChunkedAttentionOutputs(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state.slots,
                                       TwoPassFirstSubChunk(workspace), TwoPassSubChunkChunk(workspace),
                                       workspace.states.data(), sub_chunks, out, stream);
}

}  // namespace

absl::Status LaunchChunkedAttentionStates(const AttentionDims& dims, const float* k, const __nv_bfloat16* v,
                                          int64_t v_stride, const float* gammas, const AttentionChunkDesc* chunks,
                                          int num_chunks, int rows, StatePoolLayer<float> state, cudaStream_t stream,
                                          ChunkedAttentionWorkspace& workspace, int64_t sub_chunks) {
  return LaunchStates(dims, k, v, v_stride, gammas, chunks, num_chunks, rows, state, stream, workspace, sub_chunks);
}

absl::Status LaunchChunkedAttentionStates(const AttentionDims& dims, const float* k, const __nv_bfloat16* v,
                                          int64_t v_stride, const float* gammas, const AttentionChunkDesc* chunks,
                                          int num_chunks, int rows, StatePoolLayer<__nv_bfloat16> state,
                                          cudaStream_t stream, ChunkedAttentionWorkspace& workspace,
                                          int64_t sub_chunks) {
  return LaunchStates(dims, k, v, v_stride, gammas, chunks, num_chunks, rows, state, stream, workspace, sub_chunks);
}

bool TwoPassSupports(const AttentionDims& dims) { return ChunkedAttentionOutputsSmemBytes(dims) <= kMaxSmemPerBlock; }

absl::Status LaunchChunkedAttentionTwoPass(const AttentionDims& dims, const float* q, const float* k,
                                           const __nv_bfloat16* v, int64_t v_stride, const float* gammas,
                                           const AttentionChunkDesc* chunks, int num_chunks, int rows,
                                           StatePoolLayer<float> state, __nv_bfloat16* out, cudaStream_t stream,
                                           ChunkedAttentionWorkspace& workspace, int64_t sub_chunks) {
  return LaunchTwoPass(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state, out, stream, workspace,
                       sub_chunks);
}

absl::Status LaunchChunkedAttentionTwoPass(const AttentionDims& dims, const float* q, const float* k,
                                           const __nv_bfloat16* v, int64_t v_stride, const float* gammas,
                                           const AttentionChunkDesc* chunks, int num_chunks, int rows,
                                           StatePoolLayer<__nv_bfloat16> state, __nv_bfloat16* out, cudaStream_t stream,
                                           ChunkedAttentionWorkspace& workspace, int64_t sub_chunks) {
  return LaunchTwoPass(dims, q, k, v, v_stride, gammas, chunks, num_chunks, rows, state, out, stream, workspace,
                       sub_chunks);
}

}  // namespace attention_internal

absl::StatusOr<ChunkedAttentionWorkspace> ChunkedAttentionWorkspace::Create(const AttentionDims& dims, int max_rows,
                                                                            int partial_sub_chunks) {
  if (dims.heads <= 0 || dims.features <= 0 || dims.features > kMaxChunkedAttentionFeatures || dims.value_dim <= 0 ||
      dims.value_dim > kMaxAttentionValueDim || max_rows < 0 || partial_sub_chunks < 0) {
    return absl::InvalidArgumentError(absl::StrCat("chunked attention workspace: unsupported H=", dims.heads,
                                                   " F=", dims.features, " Dv=", dims.value_dim, ", max_rows ",
                                                   max_rows, ", partial_sub_chunks ", partial_sub_chunks));
  }
  ChunkedAttentionWorkspace workspace;
  workspace.sub_chunks =
      (int64_t{max_rows} + kChunkedAttentionSubChunk - 1) / kChunkedAttentionSubChunk + partial_sub_chunks;
  const int64_t elems = workspace.sub_chunks * attention_internal::TwoPassStateElems(dims);
  auto states =
      DeviceBuffer<float>::Allocate(static_cast<size_t>(elems), "the chunked attention workspace (sub-chunk states)");
  if (!states.ok()) return states.status();
  workspace.states = *std::move(states);
  auto index =
      DeviceBuffer<int32_t>::Allocate(static_cast<size_t>(attention_internal::kTwoPassMaxChunks + workspace.sub_chunks),
                                      "the chunked attention workspace (sub-chunk index)");
  if (!index.ok()) return index.status();
  workspace.index = *std::move(index);
  return workspace;
}

int64_t ChunkedAttentionWorkspace::StateCapacity(const AttentionDims& d) const {
  const int64_t per = attention_internal::TwoPassStateElems(d);
  const int64_t by_states = per > 0 ? static_cast<int64_t>(states.size()) / per : 0;
  const int64_t by_index = static_cast<int64_t>(index.size()) - attention_internal::kTwoPassMaxChunks;
  return std::max<int64_t>(0, std::min(by_states, by_index));
}

}  // namespace supra::cuda

// Small-batch projections on the tensor cores, streaming W at the memory
// bandwidth (gemv.h).
//
// Why tensor cores for a GEMV: at n = 16 every weight costs 16 multiply-adds,
// and an H200 streams about 2.1·10¹² bf16 weights per second, which on the
// fp32 pipes alone would be 34·10¹² FMA/s, about what the chip has. One
// mma.sync.m16n8k16 consumes 256 weights for 8 batch rows at a small fraction
// of the tensor cores' rate, so n = 1..16 all stay memory bound, and the
// instruction count per weight byte is lower than with FMAs even at n = 1.
//
// Fragment layout without shuffles. An m16n8k16 A fragment gives lane
// (g = lane / 4, t = lane % 4) rows g and g + 8 at the logical k columns
// {2t, 2t+1, 2t+8, 2t+9}; its B fragment gives it batch row g at the same
// logical k rows. A dot product does not care in which order k is summed, so
// any permutation of k applied to both A and B is fine: lane (g, t) loads 16
// bytes (8 consecutive weights) of row g and of row g + 8 at physical k =
// k0 + 8t .. k0 + 8t + 7, and 16 bytes of x row g at the same k; the first
// half of each load feeds one mma, the second half another. Four lanes cover
// 64 contiguous bytes of a weight row per step, a warp 16 rows × 32 k.
//
// Work split. A block owns kTiles tiles of 16 output rows; its kWarps warps
// split k between them (warp w takes chunks w, w + kWarps, ... of kUnroll
// steps, whose loads are independent and in flight together), then add their
// fragments in shared memory in a fixed order. Rows past `out` and batch rows
// past n are clamped to the last valid one (read, never stored), so the hot
// loop has no predicates. W is loaded with L1::no_allocate (it is used once);
// x through L1, since every tile of the SM reads the same x.
//
// Launch overhead. A 32 MB matrix streams in ~8 µs, and a kernel boundary
// costs ~2-3 µs of ramp-down and ramp-up, so the projections launch with
// programmatic dependent launch: the grid is resident while the previous
// kernel drains and waits for it (griddepcontrol.wait) before it touches
// x, bias or y.
//
// Batch invariance: the split of k (kWarps, kUnroll) is chosen from in and out
// only, and the mma computes every output column independently, so a row's
// results do not depend on n or on the other rows of the batch.
#include "engine/cuda/gemv.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/programmatic_launch.cuh"
#include "engine/cuda/silu.cuh"
#include "engine/cuda/w12_layout.h"

namespace supra::cuda {
namespace {

constexpr int kTileRows = 16;   // mma M: weight rows per tile
constexpr int kBatchGroup = 8;  // mma N: batch rows per mma
constexpr int kStepK = 32;      // k per warp step: 4 lanes × 8 bf16
constexpr int64_t kMaxDim = int64_t{1} << 30;

// One projection of a launch. Blocks [first_block, first_block + blocks)
// of the grid compute it.
struct GemvProblemParams {
  const __nv_bfloat16* x;  // [n, in], row stride x_stride
  int64_t x_stride;
  const __nv_bfloat16* w;  // [out, in]
  const float* bias;       // [out] or nullptr
  void* y;                 // [n, out], row stride y_stride, OutT; with kSwiGlu [n, out / 2]
  int64_t y_stride;
  int in, out;
  int first_block;
};

// A launch computes one projection, or two independent ones (the grouped
// launch: `second` takes the blocks from second.first_block on).
struct GemvParams {
  GemvProblemParams first, second;  // second: grouped launches only
  int n;
  bool accumulate;
};

// This block's projection, field by field (a select per field keeps the
// parameters in the constant bank instead of copying them to local memory).
// Without kGrouped it is simply `first`: no registers spent on selects.
template <bool kGrouped>
__device__ __forceinline__ GemvProblemParams BlockProblem(const GemvParams& p) {
  const bool second = kGrouped && static_cast<int>(blockIdx.x) >= p.second.first_block;
  GemvProblemParams q;
  q.x = second ? p.second.x : p.first.x;
  q.x_stride = second ? p.second.x_stride : p.first.x_stride;
  q.w = second ? p.second.w : p.first.w;
  q.bias = second ? p.second.bias : p.first.bias;
  q.y = second ? p.second.y : p.first.y;
  q.y_stride = second ? p.second.y_stride : p.first.y_stride;
  q.in = second ? p.second.in : p.first.in;
  q.out = second ? p.second.out : p.first.out;
  q.first_block = second ? p.second.first_block : 0;
  return q;
}

// 16 bytes of weights, read once: keep them out of L1, and let L2 fetch 256
// bytes at a time (the warp reads the rest of each row segment next; this
// hint alone was worth ~5 % on the H200).
__device__ __forceinline__ uint4 LoadWeights(const __nv_bfloat16* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

// 16 bytes of x, read by every tile of the SM, through L1. A kernel that may
// overlap the one writing x (kOverlap: programmatic launch) uses a plain
// load: x is not read-only for its whole lifetime, as ld.global.nc requires,
// and a plain load stays ordered after WaitForPreviousKernel's clobber. The
// others use ld.global.nc, ~2 % faster on the largest matrices.
template <bool kOverlap>
__device__ __forceinline__ uint4 LoadInput(const __nv_bfloat16* p) {
  if constexpr (kOverlap) {
    return *reinterpret_cast<const uint4*>(p);
  } else {
    return __ldg(reinterpret_cast<const uint4*>(p));
  }
}

// row[k .. k + 7] from a possibly unaligned address, with zeros from index
// `limit` on (the scalar path; plain loads, as in LoadInput).
__device__ __forceinline__ uint4 LoadScalar8(const __nv_bfloat16* row, int k, int limit) {
  const auto* bits = reinterpret_cast<const unsigned short*>(row);
  uint32_t v[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t lo = k + 2 * i < limit ? bits[k + 2 * i] : 0u;
    const uint32_t hi = k + 2 * i + 1 < limit ? bits[k + 2 * i + 1] : 0u;
    v[i] = lo | (hi << 16);  // the lower k in the low half, as a 32-bit load of
                             // memory would give
  }
  return make_uint4(v[0], v[1], v[2], v[3]);
}

// d += A · B for one m16n8k16 (bf16 inputs, fp32 accumulation).
__device__ __forceinline__ void Mma(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                    uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// One k-step of 32 for one tile and one batch group: lo/hi are 8 weights of
// rows g and g + 8, xb 8 inputs of batch row g, all at physical k0 + 8t.
// Two accumulator sets, one per half, so consecutive mmas do not wait on each
// other.
__device__ __forceinline__ void MmaStep(float (&acc)[2][4], uint4 lo, uint4 hi, uint4 xb) {
  Mma(acc[0], lo.x, hi.x, lo.y, hi.y, xb.x, xb.y);
  Mma(acc[1], lo.z, hi.z, lo.w, hi.w, xb.z, xb.w);
}

template <typename OutT>
__device__ __forceinline__ float LoadOutput(const OutT* p) {
  if constexpr (std::is_same_v<OutT, float>) {
    return *p;
  } else {
    return __bfloat162float(*p);
  }
}

template <typename OutT>
__device__ __forceinline__ void StoreOutput(OutT* p, float v) {
  if constexpr (std::is_same_v<OutT, float>) {
    *p = v;
  } else {
    *p = __float2bfloat16_rn(v);
  }
}

// kGroups: batch groups of 8 (n ≤ 8 · kGroups). kVector: 16-byte loads (in %
// 8 == 0, aligned x and W); otherwise element loads with bounds checks.
// kOverlap: launched with programmatic dependent launch (when the caller
// allows it), reading x with plain loads (see LaunchForOutput for when that
// pays). kSwiGlu: W is an interleaved w12 (w12_layout.h) and the block
// writes bf16(silu(a)·b) for its groups instead of its rows. kGrouped: two
// projections in one grid (GemvParams).
template <typename OutT, int kGroups, int kTiles, int kUnroll, int kWarps, bool kVector, bool kOverlap, bool kSwiGlu,
          bool kGrouped>
__global__ void __launch_bounds__(kWarps * 32) GemvKernel(const GemvParams params) {
  static_assert(!kSwiGlu || std::is_same_v<OutT, __nv_bfloat16>, "the SwiGLU epilogue writes bf16");
  const GemvProblemParams p = BlockProblem<kGrouped>(params);
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  const int g = lane / 4, t = lane % 4;
  const int64_t row0 = static_cast<int64_t>(static_cast<int>(blockIdx.x) - p.first_block) * (kTileRows * kTiles);
  const int in = p.in;
  const int n = params.n;

  // This lane's weight rows (g and g + 8 of every tile) and batch rows (g of
  // every group), clamped into range, already offset by its 8t.
  const __nv_bfloat16* w_rows[kTiles][2];
#pragma unroll
  for (int tile = 0; tile < kTiles; ++tile) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t row = std::min<int64_t>(row0 + kTileRows * tile + g + 8 * h, p.out - 1);
      w_rows[tile][h] = p.w + row * in + 8 * t;
    }
  }
  const __nv_bfloat16* x_rows[kGroups];
#pragma unroll
  for (int group = 0; group < kGroups; ++group) {
    const int64_t batch_row = std::min(kBatchGroup * group + g, n - 1);
    x_rows[group] = p.x + batch_row * p.x_stride + 8 * t;
  }

  float acc[kTiles][kGroups][2][4];
#pragma unroll
  for (int tile = 0; tile < kTiles; ++tile) {
#pragma unroll
    for (int group = 0; group < kGroups; ++group) {
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[tile][group][i / 4][i % 4] = 0.0f;
    }
  }

  if constexpr (kVector) {
    constexpr int kChunk = kUnroll * kStepK;
    const int k_main = in - in % kChunk;
    // No L2 prefetch of the first weights before the wait: in the decode
    // step it cost time at every size tried (per-warp first chunks: +0.1 ms
    // a step at batch 1; 16-128 KiB per block: +0.05 to +0.85 ms).
    WaitForPreviousKernel();
    for (int k = warp * kChunk; k < k_main; k += kWarps * kChunk) {
      uint4 a[kUnroll][kTiles][2];
      uint4 b[kUnroll][kGroups];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
        for (int tile = 0; tile < kTiles; ++tile) {
          a[u][tile][0] = LoadWeights(w_rows[tile][0] + k + kStepK * u);
          a[u][tile][1] = LoadWeights(w_rows[tile][1] + k + kStepK * u);
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
        for (int group = 0; group < kGroups; ++group) b[u][group] = LoadInput<kOverlap>(x_rows[group] + k + kStepK * u);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
        for (int tile = 0; tile < kTiles; ++tile) {
#pragma unroll
          for (int group = 0; group < kGroups; ++group) {
            MmaStep(acc[tile][group], a[u][tile][0], a[u][tile][1], b[u][group]);
          }
        }
      }
    }
    // The steps of 32 past the last whole chunk. in % 8 == 0, so a lane's 8
    // values are either all in range or all past the end (then zero).
    for (int k = k_main + warp * kStepK; k < in; k += kWarps * kStepK) {
      const bool valid = k + 8 * t < in;
      const uint4 zero = make_uint4(0, 0, 0, 0);
      uint4 a[kTiles][2];
      uint4 b[kGroups];
#pragma unroll
      for (int tile = 0; tile < kTiles; ++tile) {
        a[tile][0] = valid ? LoadWeights(w_rows[tile][0] + k) : zero;
        a[tile][1] = valid ? LoadWeights(w_rows[tile][1] + k) : zero;
      }
#pragma unroll
      for (int group = 0; group < kGroups; ++group) b[group] = valid ? LoadInput<kOverlap>(x_rows[group] + k) : zero;
#pragma unroll
      for (int tile = 0; tile < kTiles; ++tile) {
#pragma unroll
        for (int group = 0; group < kGroups; ++group) MmaStep(acc[tile][group], a[tile][0], a[tile][1], b[group]);
      }
    }
  } else {
    WaitForPreviousKernel();
    // The row pointers carry +8t; the bound is relative to them.
    const int limit = in - 8 * t;
    for (int k = warp * kStepK; k < in; k += kWarps * kStepK) {
      uint4 a[kTiles][2];
      uint4 b[kGroups];
#pragma unroll
      for (int tile = 0; tile < kTiles; ++tile) {
        a[tile][0] = LoadScalar8(w_rows[tile][0], k, limit);
        a[tile][1] = LoadScalar8(w_rows[tile][1], k, limit);
      }
#pragma unroll
      for (int group = 0; group < kGroups; ++group) b[group] = LoadScalar8(x_rows[group], k, limit);
#pragma unroll
      for (int tile = 0; tile < kTiles; ++tile) {
#pragma unroll
        for (int group = 0; group < kGroups; ++group) MmaStep(acc[tile][group], a[tile][0], a[tile][1], b[group]);
      }
    }
  }

  AllowNextKernel();

  // Sum the warps' fragments in a fixed order. partial[w][v][lane] keeps a
  // warp's stores and the readers' loads free of bank conflicts.
  constexpr int kValues = kTiles * kGroups * 4;
  __shared__ float partial[kWarps][kValues][32];
#pragma unroll
  for (int tile = 0; tile < kTiles; ++tile) {
#pragma unroll
    for (int group = 0; group < kGroups; ++group) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        partial[warp][(tile * kGroups + group) * 4 + c][lane] = acc[tile][group][0][c] + acc[tile][group][1][c];
      }
    }
  }
  __syncthreads();

  // The block's sum for its row r (0 .. kTiles·16 − 1) and batch row col.
  // Where the mma left (row, col): C fragment value c of lane (g, t) holds
  // row g + 8·(c / 2), column 2t + c % 2.
  auto block_sum = [&](int r, int col) {
    const int tile = r / kTileRows, rr = r % kTileRows, group = col / kBatchGroup, cc = col % kBatchGroup;
    const int src_lane = (rr % 8) * 4 + cc / 2;
    const int value = (tile * kGroups + group) * 4 + (rr / 8) * 2 + cc % 2;
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += partial[w][value][src_lane];
    return sum;
  };

  constexpr int kRows = kTileRows * kTiles;
  OutT* y = static_cast<OutT*>(p.y);
  if constexpr (kSwiGlu) {
    // Tile `tile` is group row0 / 16 + tile of the interleaved w12: a_j at
    // its row j % 8, b_j at row size + j % 8. Each half is rounded to bf16
    // first, as a bf16 ab stored by the unfused GEMV would be, so the result
    // is bit-identical to GEMV + LaunchSwiGlu. Thread e writes y[col][j]
    // with e = col · (kRows / 2) + j − 8 · first group.
    constexpr int kOutputs = kRows / 2;
    const int64_t ffn = p.out / 2;
    for (int e = static_cast<int>(threadIdx.x); e < kOutputs * n; e += kWarps * 32) {
      const int col = e / kOutputs, tile = (e % kOutputs) / static_cast<int>(kW12Group),
                i = e % static_cast<int>(kW12Group);
      const int64_t group = row0 / kTileRows + tile;
      const int64_t j = kW12Group * group + i;
      if (j >= ffn) continue;
      const int size = static_cast<int>(W12GroupSize(group, ffn));
      if (i >= size) continue;
      const float a = __bfloat162float(__float2bfloat16_rn(block_sum(tile * kTileRows + i, col)));
      const float b = __bfloat162float(__float2bfloat16_rn(block_sum(tile * kTileRows + size + i, col)));
      y[col * p.y_stride + j] = __float2bfloat16_rn(SiluMul(a, b));
    }
  } else {
    // Thread e writes y[col][row0 + r] with e = col · rows + r: consecutive
    // threads write consecutive outputs of one batch row.
    for (int e = static_cast<int>(threadIdx.x); e < kRows * n; e += kWarps * 32) {
      const int col = e / kRows, r = e % kRows;
      const int64_t row = row0 + r;
      if (row >= p.out) continue;
      float sum = block_sum(r, col);
      OutT* out = y + col * p.y_stride + row;
      // The order of cpu::Linear: (y + x·wᵀ) + bias.
      if (params.accumulate) sum = LoadOutput(out) + sum;
      if (p.bias != nullptr) sum += p.bias[row];
      StoreOutput(out, sum);
    }
  }
}

template <typename OutT, int kGroups, int kTiles, int kUnroll, int kWarps, bool kVector, bool kOverlap, bool kSwiGlu,
          bool kGrouped>
absl::Status LaunchConfigured(GemvParams params, bool programmatic, cudaStream_t stream) {
  constexpr int64_t kBlockRows = kTileRows * kTiles;
  int64_t blocks = (params.first.out + kBlockRows - 1) / kBlockRows;
  if constexpr (kGrouped) {
    params.second.first_block = static_cast<int>(blocks);
    blocks += (params.second.out + kBlockRows - 1) / kBlockRows;
  }
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(blocks));
  config.blockDim = dim3(kWarps * 32);
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  cudaLaunchAttribute attribute = ProgrammaticLaunchAttribute();
  config.attrs = &attribute;
  config.numAttrs = kOverlap && programmatic ? 1 : 0;
  CUDA_RETURN_IF_ERROR(cudaLaunchKernelEx(
      &config, GemvKernel<OutT, kGroups, kTiles, kUnroll, kWarps, kVector, kOverlap, kSwiGlu, kGrouped>, params));
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

// The k split (kUnroll, kWarps) depends only on the shape, never on n (see
// the batch-invariance note at the top); kTiles, kGroups and kOverlap do not
// change any output's arithmetic. Chosen on an H200 from the decode step as
// it runs (supra-bench-engine --trace: each kernel's time in the stream,
// between the kernels of the real step, with every layer's weights cold);
// isolated timings (gemv_bench, ncu) ranked the configurations differently,
// by up to 40 %:
//  - many rows (≥ 1024 tiles: w12, logits): 2-step chunks over 16 warps,
//    overlapped. The w12 GEMV took 60.7 µs per layer (1.10 × its floor);
//    two tiles per block with 8-step chunks over 2 warps, the best in
//    isolation, took 94-97 µs there, and 1-step chunks or 8 warps 66-71.
//  - fewer rows: 2-step chunks over 8 warps when that gives ≥ ~3000 warps
//    (in_proj), otherwise 1-step chunks over 16 (w3, out_proj, the feature
//    maps: 21 µs per w3 + out_proj pair against 23 with 2-step chunks).
// Every vector-path launch is overlapped (programmatic launch). At n > 8 two
// tiles per block halve the x traffic per weight (+12 to +20 points on w3
// and the 4096² maps in isolation). A grouped launch counts the tiles of both
// projections (the embed_q and embed_kv pair of Mistral-SUPRA, 256 + 64
// tiles, takes the same split as each of them alone).
template <typename OutT, bool kSwiGlu, bool kGrouped>
absl::Status LaunchForOutput(const GemvParams& params, bool vector, bool programmatic, cudaStream_t stream) {
  const bool two_groups = params.n > kBatchGroup;
  if (!vector) {
    if (two_groups) {
      return LaunchConfigured<OutT, 2, 1, 1, 4, false, false, kSwiGlu, kGrouped>(params, programmatic, stream);
    }
    return LaunchConfigured<OutT, 1, 1, 1, 4, false, false, kSwiGlu, kGrouped>(params, programmatic, stream);
  }
  int64_t tiles = (params.first.out + kTileRows - 1) / kTileRows;
  if constexpr (kGrouped) tiles += (params.second.out + kTileRows - 1) / kTileRows;
  if (tiles >= 1024) {
    if (two_groups) {
      return LaunchConfigured<OutT, 2, 2, 2, 16, true, true, kSwiGlu, kGrouped>(params, programmatic, stream);
    }
    return LaunchConfigured<OutT, 1, 1, 2, 16, true, true, kSwiGlu, kGrouped>(params, programmatic, stream);
  }
  if (tiles * 8 >= 3000) {
    if (two_groups) {
      return LaunchConfigured<OutT, 2, 1, 2, 8, true, true, kSwiGlu, kGrouped>(params, programmatic, stream);
    }
    return LaunchConfigured<OutT, 1, 1, 2, 8, true, true, kSwiGlu, kGrouped>(params, programmatic, stream);
  }
  if (two_groups) {
    return LaunchConfigured<OutT, 2, 2, 1, 16, true, true, kSwiGlu, kGrouped>(params, programmatic, stream);
  }
  return LaunchConfigured<OutT, 1, 1, 1, 16, true, true, kSwiGlu, kGrouped>(params, programmatic, stream);
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The shared checks; `what` names the launcher in the message.
absl::Status CheckProblem(const char* what, const GemvProblem& problem, int64_t n) {
  if (problem.x == nullptr || problem.w == nullptr || problem.y == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": null x, w or y"));
  }
  if (n < 1 || n > kGemvMaxRows || problem.in < 1 || problem.in > kMaxDim || problem.out < 1 || problem.out > kMaxDim ||
      problem.x_stride < problem.in || problem.y_stride < problem.out) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": unsupported shape n=", n, " in=", problem.in, " out=", problem.out, " x_stride=", problem.x_stride,
        " y_stride=", problem.y_stride, " (n must be in [1, ", kGemvMaxRows, "])"));
  }
  return absl::OkStatus();
}

GemvProblemParams ToParams(const GemvProblem& problem) {
  return GemvProblemParams{problem.x,
                           problem.x_stride,
                           problem.w,
                           problem.bias,
                           problem.y,
                           problem.y_stride,
                           static_cast<int>(problem.in),
                           static_cast<int>(problem.out),
                           0};
}

bool VectorFriendly(const GemvProblem& problem) {
  return problem.in % 8 == 0 && problem.x_stride % 8 == 0 && Aligned16(problem.x) && Aligned16(problem.w);
}

}  // namespace

absl::Status LaunchGemv(const __nv_bfloat16* x, int64_t x_stride, const __nv_bfloat16* w, const float* bias, void* y,
                        int64_t y_stride, bool y_is_bf16, int64_t n, int64_t in, int64_t out, bool accumulate,
                        cudaStream_t stream, bool programmatic_launch) {
  const GemvProblem problem{x, x_stride, w, bias, y, y_stride, in, out};
  if (absl::Status status = CheckProblem("LaunchGemv", problem, n); !status.ok()) return status;
  const GemvParams params{ToParams(problem), GemvProblemParams{}, static_cast<int>(n), accumulate};
  const bool vector = VectorFriendly(problem);
  if (y_is_bf16) return LaunchForOutput<__nv_bfloat16, false, false>(params, vector, programmatic_launch, stream);
  return LaunchForOutput<float, false, false>(params, vector, programmatic_launch, stream);
}

absl::Status LaunchGemvPair(const GemvProblem& first, const GemvProblem& second, bool y_is_bf16, int64_t n,
                            bool accumulate, cudaStream_t stream, bool programmatic_launch) {
  if (absl::Status status = CheckProblem("LaunchGemvPair (first)", first, n); !status.ok()) return status;
  if (absl::Status status = CheckProblem("LaunchGemvPair (second)", second, n); !status.ok()) return status;
  // Both grids of blocks together must fit gridDim.x (2^31 − 1 blocks of 16
  // rows is far beyond two matrices of at most 2^30 rows each: no check).
  const GemvParams params{ToParams(first), ToParams(second), static_cast<int>(n), accumulate};
  const bool vector = VectorFriendly(first) && VectorFriendly(second);
  if (y_is_bf16) return LaunchForOutput<__nv_bfloat16, false, true>(params, vector, programmatic_launch, stream);
  return LaunchForOutput<float, false, true>(params, vector, programmatic_launch, stream);
}

absl::Status LaunchGemvSwiGlu(const __nv_bfloat16* x, int64_t x_stride, const __nv_bfloat16* w12, __nv_bfloat16* out,
                              int64_t out_stride, int64_t n, int64_t in, int64_t ffn, cudaStream_t stream,
                              bool programmatic_launch) {
  if (ffn < 1 || ffn > kMaxDim / 2 || out_stride < ffn) {
    return absl::InvalidArgumentError(
        absl::StrCat("LaunchGemvSwiGlu: unsupported ffn=", ffn, " out_stride=", out_stride));
  }
  // The problem's y is checked as [n, 2·ffn] by CheckProblem; the kernel
  // writes only [n, ffn] of it with this stride.
  const GemvProblem problem{x, x_stride, w12, nullptr, out, std::max(out_stride, 2 * ffn), in, 2 * ffn};
  if (absl::Status status = CheckProblem("LaunchGemvSwiGlu", problem, n); !status.ok()) return status;
  GemvParams params{ToParams(problem), GemvProblemParams{}, static_cast<int>(n), false};
  params.first.y_stride = out_stride;
  return LaunchForOutput<__nv_bfloat16, true, false>(params, VectorFriendly(problem), programmatic_launch, stream);
}

}  // namespace supra::cuda

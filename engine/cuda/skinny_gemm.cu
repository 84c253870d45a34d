// Skinny GEMM on the tensor cores (skinny_gemm.h): y[n, out] = x · Wᵀ for
// decode batches too large for the GEMV kernel, streaming W near the memory
// bandwidth.
//
// "Swap AB": W rows are the M dimension of mma.sync.m16n8k16 (A, row-major,
// from shared memory by ldmatrix), the batch the N dimension (B = xᵀ: an x
// row is a B column, contiguous in k, so ldmatrix without .trans gives the B
// fragment). n is padded to kPadRows (16, 32, 64 or 128) with zero rows of x
// that are never stored; a padded column never mixes with a real one.
//
// Tiling. A block owns kBlockRows = 128 rows of W and one K slice; its 4
// warps take 32 rows (two m16 tiles) each and all kPadRows columns. Each
// pipeline stage holds W[128, 64] (16 KiB) and x[kPadRows, 64], copied by
// cp.async (16 bytes, zero-filled past out, n and in) in kStages = 4 stages,
// three in flight while one is consumed. Rows of a stage are 128 bytes;
// 16-byte chunk c of row r sits at chunk c ^ (r % 8), so the 8 rows an
// ldmatrix phase reads hit 8 distinct bank groups. W is copied with a
// 256-byte L2 prefetch (the next stage's half of the same 256-byte segment;
// an L2 evict-first cache policy on the same zero-filling copy raised an
// illegal-instruction error on the H200); x through L2 normally (every row tile rereads it:
// tiles · n · in · 2 bytes of L2 reads per launch, half the weight bytes at
// out = 4096, n = 64).
//
// Split-K. With fewer than ~264 row tiles (two blocks per SM on 132 SMs) K
// is cut into S slices (S a power of two ≤ 8, tiles · S ≤ 264, each slice ≥
// 2 k-steps; the rule reads only in and out). The S blocks of a row tile form
// one thread-block cluster: after the main loop each holds its fp32 partial
// tile in shared memory, the cluster synchronises, and block q sums 1/S of
// the tile over the S blocks' shared memory (distributed shared memory), in
// slice order 0..S−1 (deterministic), applies the epilogue and stores; a
// second cluster barrier keeps every block's shared memory alive until all
// have read it. No workspace, no counters, no atomics, and the reduction is
// spread over all S blocks (a last-block reduction would leave 1 SM of S
// reading S·n·512 bytes from L2 at the end).
//
// Epilogue. The accumulators go through shared memory ([kPadRows][132]
// floats), where the cluster reads them, so that the stores of y (and the
// accumulate reads) are coalesced along out.
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_limits.h"
#include "engine/cuda/programmatic_launch.cuh"
#include "engine/cuda/skinny_gemm.h"
#include "engine/util/status_macros.h"

namespace supra::cuda {
namespace {

constexpr int kBlockRows = 128;  // W rows per block
constexpr int kWarps = 4;        // 32 W rows each
constexpr int kThreads = kWarps * 32;
constexpr int kStepK = 64;  // k per pipeline stage: 128-byte rows
constexpr int kStages = 4;
constexpr int kChunksPerRow = kStepK / 8;  // 16-byte chunks
constexpr int kRowBytes = kStepK * 2;
constexpr int kWeightStageBytes = kBlockRows * kRowBytes;
constexpr int kStagingStride = kBlockRows + 4;  // floats; keeps the fragment stores conflict-free
constexpr int kTargetBlocks = 264;              // 2 blocks on each of an H200's 132 SMs
constexpr int kMinStepsPerSlice = 2;
constexpr int kMaxSplits = 8;  // the portable cluster size
constexpr int64_t kMaxDim = int64_t{1} << 30;

struct SkinnyParams {
  const __nv_bfloat16* x;  // [n, in], row stride x_stride
  int64_t x_stride;
  const __nv_bfloat16* w;  // [out, in], contiguous
  void* y;                 // [n, out], row stride y_stride; OutT
  int64_t y_stride;
  int n, in, out;
  int splits;           // K slices = blocks per cluster (1, 2, 4 or 8)
  int steps_per_slice;  // k-steps of kStepK per slice (the last ones may have fewer, or none)
  bool accumulate;
  bool prefetch;  // copy the first weight stages before the grid-dependency wait
};

// The split rule: how many K slices and how many k-steps each.
struct Split {
  int splits = 1;
  int steps_per_slice = 1;
};

Split ChooseSplit(int64_t in, int64_t out, int requested) {
  const int64_t tiles = (out + kBlockRows - 1) / kBlockRows;
  const int64_t steps = (in + kStepK - 1) / kStepK;
  int64_t limit = requested > 0 ? requested : std::min<int64_t>(kTargetBlocks / tiles, steps / kMinStepsPerSlice);
  limit = std::min<int64_t>(limit, std::min<int64_t>(kMaxSplits, steps));
  int splits = 1;
  while (2 * splits <= limit) splits *= 2;
  return Split{splits, static_cast<int>((steps + splits - 1) / splits)};
}

__device__ __forceinline__ uint32_t SharedAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global → shared; src_bytes 0 fills zeros and reads nothing.
__device__ __forceinline__ void CopyWeights(uint32_t dst, const void* src, uint32_t src_bytes) {
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(src_bytes)
               : "memory");
}

__device__ __forceinline__ void CopyInput(uint32_t dst, const void* src, uint32_t src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}

__device__ __forceinline__ void CommitCopies() { asm volatile("cp.async.commit_group;" ::: "memory"); }

template <int kPending>
__device__ __forceinline__ void WaitCopies() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending) : "memory");
}

__device__ __forceinline__ void LoadMatrices(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address)
               : "memory");
}

// d += A · B for one m16n8k16 (bf16 inputs, fp32 accumulation).
__device__ __forceinline__ void Mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <typename OutT>
__device__ __forceinline__ void Store(OutT* p, float v, bool accumulate) {
  if constexpr (std::is_same_v<OutT, float>) {
    *p = accumulate ? *p + v : v;
  } else {
    *p = __float2bfloat16_rn(v);  // accumulate is refused for a bf16 y
  }
}

template <int kPadRows>
constexpr int StageBytes() {
  return kWeightStageBytes + kPadRows * kRowBytes;
}

template <int kPadRows>
constexpr int SharedBytes() {
  constexpr int pipeline = kStages * StageBytes<kPadRows>();
  constexpr int staging = kPadRows * kStagingStride * static_cast<int>(sizeof(float));
  return pipeline > staging ? pipeline : staging;
}

// Block b computes row tile b / splits, K slice b % splits.
template <typename OutT, int kPadRows>
__global__ void __launch_bounds__(kThreads) SkinnyGemmKernel(const SkinnyParams p) {
  constexpr int kGroups = kPadRows / 16;  // ldmatrix.x4 of x: two n8 tiles each
  extern __shared__ __align__(128) unsigned char shared[];

  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid % 32, warp = tid / 32;
  const int tile = static_cast<int>(blockIdx.x) / p.splits;
  const int slice = static_cast<int>(blockIdx.x) % p.splits;
  const int64_t row0 = static_cast<int64_t>(tile) * kBlockRows;
  const int total_steps = (p.in + kStepK - 1) / kStepK;
  const int first_step = slice * p.steps_per_slice;
  // Trailing slices may be short or empty (then their partial tile is zero).
  const int steps = max(0, min(p.steps_per_slice, total_steps - first_step));

  const uint32_t shared_base = SharedAddress(shared);

  // Copy assignment: thread tid moves chunk tid % 8 of rows tid / 8 + 16·j.
  // The swizzled chunk is the same for every j (16·j keeps r % 8).
  const int copy_row = tid / kChunksPerRow, copy_chunk = tid % kChunksPerRow;
  const uint32_t copy_offset = static_cast<uint32_t>(copy_row * kRowBytes + ((copy_chunk ^ (copy_row % 8)) * 16));

  auto copy_weights = [&](int step) {
    const uint32_t stage = shared_base + static_cast<uint32_t>((step % kStages) * StageBytes<kPadRows>());
    const int k = (first_step + step) * kStepK + copy_chunk * 8;
    const bool k_valid = k < p.in;
#pragma unroll
    for (int j = 0; j < kBlockRows / 16; ++j) {
      const int64_t row = row0 + copy_row + 16 * j;
      const bool valid = k_valid && row < p.out;
      const __nv_bfloat16* src = valid ? p.w + row * p.in + k : p.w;
      CopyWeights(stage + copy_offset + static_cast<uint32_t>(16 * j * kRowBytes), src, valid ? 16u : 0u);
    }
  };
  auto copy_input = [&](int step) {
    const uint32_t stage =
        shared_base + static_cast<uint32_t>((step % kStages) * StageBytes<kPadRows>() + kWeightStageBytes);
    const int k = (first_step + step) * kStepK + copy_chunk * 8;
    const bool k_valid = k < p.in;
#pragma unroll
    for (int j = 0; j < kPadRows / 16; ++j) {
      const int row = copy_row + 16 * j;
      const bool valid = k_valid && row < p.n;
      const __nv_bfloat16* src = valid ? p.x + row * p.x_stride + k : p.x;
      CopyInput(stage + copy_offset + static_cast<uint32_t>(16 * j * kRowBytes), src, valid ? 16u : 0u);
    }
  };

  // Prologue: stages 0 .. kStages − 2, one commit group per stage (the first
  // group also holds the weights copied before the wait). Steps past the
  // slice commit empty groups so that group i is always step i.
  if (p.prefetch) {
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < steps) copy_weights(s);
    }
    WaitForPreviousKernel();
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < steps) copy_input(s);
      CommitCopies();
    }
  } else {
    WaitForPreviousKernel();
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < steps) {
        copy_weights(s);
        copy_input(s);
      }
      CommitCopies();
    }
  }

  float acc[2][2 * kGroups][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
    for (int nt = 0; nt < 2 * kGroups; ++nt) {
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[mt][nt][c] = 0.0f;
    }
  }

  // ldmatrix addresses within a stage. A (W): matrices (rows 0-7, k 0-7),
  // (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) of the m16
  // tile = a0..a3. B (x): (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7),
  // (n 8-15, k 8-15) = b0, b1 of n8 tile 2g and b0, b1 of tile 2g + 1. Lane l
  // gives the address of row l % 8 of matrix l / 8; every row has r % 8 =
  // l % 8.
  const int a_row = warp * 32 + (lane % 8) + ((lane / 8) % 2) * 8;
  const int a_chunk_hi = lane / 16;
  const int b_row = (lane % 8) + (lane / 16) * 8;
  const int b_chunk_hi = (lane / 8) % 2;
  const int swizzle = lane % 8;

  for (int step = 0; step < steps; ++step) {
    WaitCopies<kStages - 2>();  // this thread's copies of `step` have landed
    __syncthreads();            // everyone's have, and step − 1's buffer is free
    const int next = step + kStages - 1;
    if (next < steps) {
      copy_weights(next);
      copy_input(next);
    }
    CommitCopies();

    const uint32_t w_stage = shared_base + static_cast<uint32_t>((step % kStages) * StageBytes<kPadRows>());
    const uint32_t x_stage = w_stage + kWeightStageBytes;
#pragma unroll
    for (int kk = 0; kk < kStepK / 16; ++kk) {
      uint32_t a[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const int row = a_row + 16 * mt;
        const int chunk = (2 * kk + a_chunk_hi) ^ swizzle;
        LoadMatrices(a[mt], w_stage + static_cast<uint32_t>(row * kRowBytes + chunk * 16));
      }
#pragma unroll
      for (int group = 0; group < kGroups; ++group) {
        uint32_t b[4];
        const int row = b_row + 16 * group;
        const int chunk = (2 * kk + b_chunk_hi) ^ swizzle;
        LoadMatrices(b, x_stage + static_cast<uint32_t>(row * kRowBytes + chunk * 16));
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
          Mma(acc[mt][2 * group], a[mt], b[0], b[1]);
          Mma(acc[mt][2 * group + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }
  WaitCopies<0>();  // only empty groups can remain; drained before reuse
  __syncthreads();  // every warp is done with the pipeline buffers
  AllowNextKernel();

  // Accumulators to staging[col][row]: value c of lane (g, t) in m tile mt,
  // n tile nt is row 32·warp + 16·mt + g + 8·(c / 2), column 8·nt + 2t + c % 2.
  float* staging = reinterpret_cast<float*>(shared);
  {
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
      for (int nt = 0; nt < 2 * kGroups; ++nt) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int row = warp * 32 + mt * 16 + g + 8 * (c / 2);
          const int col = nt * 8 + 2 * t + c % 2;
          staging[col * kStagingStride + row] = acc[mt][nt][c];
        }
      }
    }
  }
  __syncthreads();

  OutT* y = static_cast<OutT*>(p.y);
  const int elements = p.n * kBlockRows;  // [n, 128] of this tile, row fastest
  if (p.splits == 1) {
    for (int e = tid; e < elements; e += kThreads) {
      const int col = e / kBlockRows, r = e % kBlockRows;
      const int64_t row = row0 + r;
      if (row < p.out) Store(y + col * p.y_stride + row, staging[col * kStagingStride + r], p.accumulate);
    }
    return;
  }

  // Split-K: block `slice` of the cluster sums float4 units u = slice·128 +
  // tid, + S·128, ... of the tile (unit u: column u / 32, rows 4·(u % 32) ..
  // + 3) over the cluster's staging tiles, in slice order.
  cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
  cluster.sync();  // every block's staging tile is written (release/acquire)
  const float* slices[kMaxSplits];
#pragma unroll
  for (int s = 0; s < kMaxSplits; ++s) {
    slices[s] = cluster.map_shared_rank(staging, static_cast<unsigned>(s < p.splits ? s : 0));
  }
  const int units = p.n * (kBlockRows / 4);
  for (int u = slice * kThreads + tid; u < units; u += p.splits * kThreads) {
    const int col = u / (kBlockRows / 4), r = 4 * (u % (kBlockRows / 4));
    const int offset = col * kStagingStride + r;  // 16-byte aligned: 132 floats a column
    float4 v[kMaxSplits];
#pragma unroll
    for (int s = 0; s < kMaxSplits; ++s) {
      if (s < p.splits) v[s] = *reinterpret_cast<const float4*>(slices[s] + offset);
    }
    float4 sum = v[0];
#pragma unroll
    for (int s = 1; s < kMaxSplits; ++s) {
      if (s < p.splits) {
        sum.x += v[s].x;
        sum.y += v[s].y;
        sum.z += v[s].z;
        sum.w += v[s].w;
      }
    }
    const float values[4] = {sum.x, sum.y, sum.z, sum.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t row = row0 + r + i;
      if (row < p.out) Store(y + col * p.y_stride + row, values[i], p.accumulate);
    }
  }
  cluster.sync();  // no block leaves (freeing its shared memory) while others read it
}

template <typename OutT, int kPadRows>
absl::Status LaunchPadded(const SkinnyParams& params, int64_t blocks, bool programmatic, cudaStream_t stream) {
  constexpr int kShared = SharedBytes<kPadRows>();
  RETURN_IF_ERROR(EnsureDynamicSharedMemory(reinterpret_cast<const void*>(SkinnyGemmKernel<OutT, kPadRows>), kShared));
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(blocks));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = kShared;
  config.stream = stream;
  // With split-K, the S slices of a row tile (consecutive blocks) are one
  // cluster; without it, no cluster.
  cudaLaunchAttribute attributes[2];
  unsigned count = 0;
  if (params.splits > 1) {
    attributes[count].id = cudaLaunchAttributeClusterDimension;
    attributes[count].val.clusterDim.x = static_cast<unsigned>(params.splits);
    attributes[count].val.clusterDim.y = 1;
    attributes[count].val.clusterDim.z = 1;
    ++count;
  }
  if (programmatic) attributes[count++] = ProgrammaticLaunchAttribute();
  config.attrs = attributes;
  config.numAttrs = count;
  CUDA_RETURN_IF_ERROR(cudaLaunchKernelEx(&config, SkinnyGemmKernel<OutT, kPadRows>, params));
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

template <typename OutT>
absl::Status LaunchForOutput(const SkinnyParams& params, int64_t blocks, bool programmatic, cudaStream_t stream) {
  if (params.n <= 16) return LaunchPadded<OutT, 16>(params, blocks, programmatic, stream);
  if (params.n <= 32) return LaunchPadded<OutT, 32>(params, blocks, programmatic, stream);
  if (params.n <= 64) return LaunchPadded<OutT, 64>(params, blocks, programmatic, stream);
  return LaunchPadded<OutT, 128>(params, blocks, programmatic, stream);
}

bool Aligned(const void* p, size_t alignment) { return reinterpret_cast<uintptr_t>(p) % alignment == 0; }

}  // namespace

absl::Status CheckSkinnyGemm(const GemmOperands& op) {
  if (op.x == nullptr || op.w == nullptr || op.y == nullptr) {
    return absl::InvalidArgumentError("LaunchSkinnyGemm: null x, w or y");
  }
  if (op.n < 1 || op.n > kSkinnyGemmMaxRows || op.in < 1 || op.in > kMaxDim || op.out < 1 || op.out > kMaxDim ||
      op.x_stride < op.in || op.y_stride < op.out || op.x_stride > kMaxDim || op.y_stride > kMaxDim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LaunchSkinnyGemm: unsupported shape n=", op.n, " in=", op.in, " out=", op.out, " x_stride=", op.x_stride,
        " y_stride=", op.y_stride, " (n must be in [1, ", kSkinnyGemmMaxRows, "])"));
  }
  if (op.in % 8 != 0 || op.x_stride % 8 != 0 || !Aligned(op.x, 16) || !Aligned(op.w, 16)) {
    return absl::InvalidArgumentError(absl::StrCat("LaunchSkinnyGemm: needs in and x_stride multiples of 8 and ",
                                                   "16-byte aligned x and W (in=", op.in, " x_stride=", op.x_stride,
                                                   ")"));
  }
  if (op.accumulate && op.y_is_bf16) {
    return absl::InvalidArgumentError("LaunchSkinnyGemm: accumulate needs an fp32 y");
  }
  return absl::OkStatus();
}

absl::Status LaunchSkinnyGemm(const GemmOperands& op, cudaStream_t stream, const SkinnyGemmOptions& options) {
  RETURN_IF_ERROR(CheckSkinnyGemm(op));
  const Split split = ChooseSplit(op.in, op.out, options.split_k);
  const int64_t tiles = (op.out + kBlockRows - 1) / kBlockRows;
  const SkinnyParams params{op.x,
                            op.x_stride,
                            op.w,
                            op.y,
                            op.y_stride,
                            static_cast<int>(op.n),
                            static_cast<int>(op.in),
                            static_cast<int>(op.out),
                            split.splits,
                            split.steps_per_slice,
                            op.accumulate,
                            options.programmatic_launch && options.prefetch_weights};
  const int64_t blocks = tiles * split.splits;
  if (blocks > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("LaunchSkinnyGemm: too many blocks (", blocks, ")"));
  }
  if (op.y_is_bf16) return LaunchForOutput<__nv_bfloat16>(params, blocks, options.programmatic_launch, stream);
  return LaunchForOutput<float>(params, blocks, options.programmatic_launch, stream);
}

}  // namespace supra::cuda

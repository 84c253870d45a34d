#include "engine/cuda/feature_map_rope.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/programmatic_launch.cuh"

namespace supra::cuda {
namespace {

// Blocks of at most 256 threads, several per SM: one row of Mistral-SUPRA
// (40 heads of 16 four-pair units) is three blocks, not one block of 640
// threads that would hold an SM alone.
constexpr int kMaxThreads = 256;
// Blocks wanted in flight: two per SM of an H200. Rows are split over more
// blocks (by heads) until a launch has about this many, so that decode's few
// rows spread over the chip.
constexpr int64_t kTargetBlocks = 264;
// With qk norm every block recomputes its row's sums of squares (a row-wide
// reduction that cannot be split without a second pass), so rows are split
// less finely.
constexpr int kMaxQkNormSplit = 16;
constexpr int kMaxHalf = 2048;  // cos/sin tables in shared memory: 16 KiB at most
constexpr double kTwoPi = 2.0 * std::numbers::pi;
constexpr double kInvTwoPi = 0.5 * std::numbers::inv_pi;

struct Params {
  const float* fq_pre;       // [n, H·F]
  const float* bq;           // [H·F]
  const float* fk_pre;       // [n, Hkv·F]
  const float* bk;           // [Hkv·F]
  const int64_t* positions;  // [n]
  const double* inv_freq;    // [half]
  const float* q_norm;       // [H·F] or nullptr
  const float* k_norm;       // [H·F] or nullptr
  float* fq;                 // [n, H·F]
  float* fk;                 // [n, Hk·F]
  double eps;
  float key_scale;  // float(1 / sqrt(double(F))), as the CPU model computes it
  int heads;        // H
  int key_heads;    // Hk: H with qk norm, else Hkv
  int key_group;    // output key head hk reads kv head hk / key_group (H / Hkv with qk norm, else 1)
  int features;     // F
  int half;         // F / 2
  int heads_per_block;
  int64_t q_width;   // H·F
  int64_t kv_width;  // Hkv·F
  int64_t k_width;   // Hk·F
  bool qk_norm;
};

// The block's sums of a and b, returned to every thread (blockDim.x is a
// multiple of 32; called at most once per kernel).
__device__ __forceinline__ double2 BlockSum2(double a, double b) {
  __shared__ double2 warp_sums[32];
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    a += __shfl_xor_sync(0xffffffffu, a, offset);
    b += __shfl_xor_sync(0xffffffffu, b, offset);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = make_double2(a, b);
  __syncthreads();
  const double2 mine = lane < static_cast<int>(blockDim.x / 32) ? warp_sums[lane] : make_double2(0.0, 0.0);
  a = mine.x;
  b = mine.y;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    a += __shfl_xor_sync(0xffffffffu, a, offset);
    b += __shfl_xor_sync(0xffffffffu, b, offset);
  }
  return make_double2(a, b);
}

template <int kVec>
__device__ __forceinline__ void Load(const float* p, float (&v)[kVec]) {
  if constexpr (kVec == 4) {
    const float4 t = *reinterpret_cast<const float4*>(p);
    v[0] = t.x;
    v[1] = t.y;
    v[2] = t.z;
    v[3] = t.w;
  } else {
#pragma unroll
    for (int j = 0; j < kVec; ++j) v[j] = p[j];
  }
}

template <int kVec>
__device__ __forceinline__ void Store(float* p, const float (&v)[kVec]) {
  if constexpr (kVec == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  } else {
#pragma unroll
    for (int j = 0; j < kVec; ++j) p[j] = v[j];
  }
}

// Σ ReLU(x + bias)² over `width` floats, this thread's share, in float64.
template <int kVec>
__device__ __forceinline__ double SumSquaresOfFeatures(const float* x, const float* bias, int64_t width) {
  double sum = 0;
  for (int64_t i = static_cast<int64_t>(threadIdx.x) * kVec; i < width; i += static_cast<int64_t>(blockDim.x) * kVec) {
    float v[kVec], b[kVec];
    Load<kVec>(x + i, v);
    Load<kVec>(bias + i, b);
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const float f = fmaxf(v[j] + b[j], 0.0f);
      sum += static_cast<double>(f) * f;  // exact square: only the additions round
    }
  }
  return sum;
}

// One thread's share of a head: kVec rotary pairs (i + j, i + half + j),
// after the feature map (bias, ReLU), with its norm weights when qk norm is on.
template <int kVec>
struct Unit {
  float a[kVec], b[kVec];            // first and second half of the pairs
  float norm_a[kVec], norm_b[kVec];  // qk norm weights (qk norm only)
  float* dst;                        // where the first half goes
  int i;                             // pair index within the head
  bool is_query;
};

// Loads unit u of this block (heads from head_begin on) and applies the
// feature map: ReLU(x + bias), as cpu::FeatureMap.
template <int kVec>
__device__ __forceinline__ void LoadUnit(const Params& p, int64_t row, int head_begin, int units_per_head, int u,
                                         Unit<kVec>& unit) {
  const int head = head_begin + u / units_per_head;
  unit.i = (u % units_per_head) * kVec;
  unit.is_query = head < p.heads;
  const float* src;
  const float* bias;
  const float* norm;  // only read with qk norm
  if (unit.is_query) {
    src = p.fq_pre + row * p.q_width + int64_t{head} * p.features;
    bias = p.bq + int64_t{head} * p.features;
    norm = p.qk_norm ? p.q_norm + int64_t{head} * p.features : nullptr;
    unit.dst = p.fq + row * p.q_width + int64_t{head} * p.features;
  } else {
    const int key_head = head - p.heads;
    const int kv_head = key_head / p.key_group;  // grouped-query expansion (qk norm only; else key_group is 1)
    src = p.fk_pre + row * p.kv_width + int64_t{kv_head} * p.features;
    bias = p.bk + int64_t{kv_head} * p.features;
    norm = p.qk_norm ? p.k_norm + int64_t{key_head} * p.features : nullptr;
    unit.dst = p.fk + row * p.k_width + int64_t{key_head} * p.features;
  }
  float bias_a[kVec], bias_b[kVec];
  Load<kVec>(src + unit.i, unit.a);
  Load<kVec>(src + p.half + unit.i, unit.b);
  Load<kVec>(bias + unit.i, bias_a);
  Load<kVec>(bias + p.half + unit.i, bias_b);
  if (p.qk_norm) {
    Load<kVec>(norm + unit.i, unit.norm_a);
    Load<kVec>(norm + p.half + unit.i, unit.norm_b);
  }
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    unit.a[j] = fmaxf(unit.a[j] + bias_a[j], 0.0f);
    unit.b[j] = fmaxf(unit.b[j] + bias_b[j], 0.0f);
  }
}

// qk norm (cpu::RmsNorm's element: float(x · inv_rms) · weight), then RoPE
// (cpu::ApplyRope: [a·c − b·s, b·c + a·s] · scale), then the store.
template <int kVec>
__device__ __forceinline__ void FinishUnit(const Params& p, const float* cos_table, const float* sin_table,
                                           double q_inv_rms, double k_inv_rms, Unit<kVec>& unit) {
  if (p.qk_norm) {
    const double inv_rms = unit.is_query ? q_inv_rms : k_inv_rms;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      unit.a[j] = __fmul_rn(__double2float_rn(static_cast<double>(unit.a[j]) * inv_rms), unit.norm_a[j]);
      unit.b[j] = __fmul_rn(__double2float_rn(static_cast<double>(unit.b[j]) * inv_rms), unit.norm_b[j]);
    }
  }
  const float scale = unit.is_query ? 1.0f : p.key_scale;
  float out_a[kVec], out_b[kVec];
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const float c = cos_table[unit.i + j], s = sin_table[unit.i + j];
    out_a[j] = __fmul_rn(__fsub_rn(__fmul_rn(unit.a[j], c), __fmul_rn(unit.b[j], s)), scale);
    out_b[j] = __fmul_rn(__fadd_rn(__fmul_rn(unit.b[j], c), __fmul_rn(unit.a[j], s)), scale);
  }
  Store<kVec>(unit.dst + unit.i, out_a);
  Store<kVec>(unit.dst + p.half + unit.i, out_b);
}

// Grid: (rows, splits). Block (r, s) handles heads [s·hpb, (s+1)·hpb) of the
// concatenated list [query heads 0..H−1, output key heads 0..Hk−1] of row r,
// as `units` of kVec rotary pairs; thread t takes units t, t + blockDim.x, ...
// Programmatic launch (programmatic_launch.cuh): the cos/sin tables come from
// the positions (uploaded by a copy, never by the previous kernel) and are
// computed while the previous kernel finishes; the projections are read only
// after the wait. Arithmetic mirrors the CPU ops
// operation by operation (the _rn intrinsics keep nvcc from fusing a·c − b·s
// into an FMA), so results match to an ulp. Pointers are not __restrict__:
// fq/fk may be written in place over fq_pre/fk_pre.
template <int kVec>
__global__ void __launch_bounds__(kMaxThreads) FeatureMapRopeKernel(const Params p) {
  extern __shared__ float tables[];  // cos [half], then sin [half]
  float* cos_table = tables;
  float* sin_table = tables + p.half;
  const int64_t row = blockIdx.x;
  const int head_begin = static_cast<int>(blockIdx.y) * p.heads_per_block;
  const int head_end = min(head_begin + p.heads_per_block, p.heads + p.key_heads);
  const int units_per_head = p.half / kVec;
  const int units = (head_end - head_begin) * units_per_head;

  // θ_i = p · inv_freq_i in float64 and reduced modulo 2π in float64, as
  // cpu::RopeAngles does with std::remainder: r = θ − k·2π with k the nearest
  // integer to θ / 2π. The fma forms θ − k·2π exactly (the exact value fits a
  // double, as IEEE remainder's result always does), so r equals
  // std::remainder(θ, 2π) — or differs from it by one 2π if θ / 2π rounds
  // across a half — at a few float64 operations instead of remainder()'s
  // bit-by-bit loop. cos/sin of the reduced angle in float: within 4e-7 of
  // the CPU's float64 ones.
  const double position = static_cast<double>(p.positions[row]);
  for (int i = threadIdx.x; i < p.half; i += blockDim.x) {
    const double theta = position * p.inv_freq[i];
    const double angle = fma(-rint(theta * kInvTwoPi), kTwoPi, theta);
    sincosf(static_cast<float>(angle), &sin_table[i], &cos_table[i]);
  }

  WaitForPreviousKernel();
  AllowNextKernel();
  Unit<kVec> first;
  const bool has_first = static_cast<int>(threadIdx.x) < units;
  if (has_first) LoadUnit(p, row, head_begin, units_per_head, threadIdx.x, first);

  double q_inv_rms = 0, k_inv_rms = 0;
  if (p.qk_norm) {
    // Only the halves of the row this block writes need their norm; the
    // expanded key row holds every kv head key_group times.
    double q_sum = 0, k_sum = 0;
    if (head_begin < p.heads) q_sum = SumSquaresOfFeatures<kVec>(p.fq_pre + row * p.q_width, p.bq, p.q_width);
    if (head_end > p.heads) {
      k_sum = p.key_group * SumSquaresOfFeatures<kVec>(p.fk_pre + row * p.kv_width, p.bk, p.kv_width);
    }
    const double2 sums = BlockSum2(q_sum, k_sum);
    q_inv_rms = 1.0 / sqrt(sums.x / static_cast<double>(p.q_width) + p.eps);
    k_inv_rms = 1.0 / sqrt(sums.y / static_cast<double>(p.k_width) + p.eps);
  }
  __syncthreads();  // cos/sin tables complete

  if (!has_first) return;
  FinishUnit(p, cos_table, sin_table, q_inv_rms, k_inv_rms, first);
  for (int u = threadIdx.x + blockDim.x; u < units; u += blockDim.x) {
    Unit<kVec> unit;
    LoadUnit(p, row, head_begin, units_per_head, u, unit);
    FinishUnit(p, cos_table, sin_table, q_inv_rms, k_inv_rms, unit);
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

absl::Status LaunchFeatureMapRope(const FeatureMapRopeShape& shape, const float* fq_pre, const float* bq,
                                  const float* fk_pre, const float* bk, const int64_t* positions,
                                  const double* inv_freq, const float* q_norm, const float* k_norm, double eps,
                                  int64_t n, float* fq, float* fk, cudaStream_t stream) {
  const int h = shape.heads, hkv = shape.kv_heads, f = shape.features;
  // H <= 16384 keeps the heads of a row (at most 2·H) within gridDim.y.
  if (h <= 0 || h > 16384 || hkv <= 0 || h % hkv != 0 || f <= 0 || f % 2 != 0 || f / 2 > kMaxHalf || n < 0 ||
      n > std::numeric_limits<int32_t>::max() || int64_t{h} * f > std::numeric_limits<int32_t>::max() / 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("feature map rope: unsupported shape H=", h, " Hkv=", hkv, " F=", f, " n=", n));
  }
  if ((q_norm == nullptr) != (k_norm == nullptr)) {
    return absl::InvalidArgumentError("feature map rope: qk norm needs both q_norm and k_norm");
  }
  const bool qk_norm = q_norm != nullptr;
  if (qk_norm && !(eps >= 0)) return absl::InvalidArgumentError(absl::StrCat("feature map rope: eps=", eps));
  if (n == 0) return absl::OkStatus();
  if (fq_pre == nullptr || bq == nullptr || fk_pre == nullptr || bk == nullptr || positions == nullptr ||
      inv_freq == nullptr || fq == nullptr || fk == nullptr) {
    return absl::InvalidArgumentError("feature map rope: null pointer");
  }
  if (qk_norm && fk == fk_pre) {
    return absl::InvalidArgumentError("feature map rope: with qk norm fk ([n, H·F]) cannot overwrite fk_pre");
  }

  Params p{};
  p.fq_pre = fq_pre;
  p.bq = bq;
  p.fk_pre = fk_pre;
  p.bk = bk;
  p.positions = positions;
  p.inv_freq = inv_freq;
  p.q_norm = q_norm;
  p.k_norm = k_norm;
  p.fq = fq;
  p.fk = fk;
  p.eps = eps;
  p.key_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(f)));
  p.heads = h;
  p.key_heads = qk_norm ? h : hkv;
  p.key_group = qk_norm ? h / hkv : 1;
  p.features = f;
  p.half = f / 2;
  p.q_width = int64_t{h} * f;
  p.kv_width = int64_t{hkv} * f;
  p.k_width = int64_t{p.key_heads} * f;
  p.qk_norm = qk_norm;

  const bool vec = p.half % 4 == 0 && Aligned16(fq_pre) && Aligned16(bq) && Aligned16(fk_pre) && Aligned16(bk) &&
                   Aligned16(fq) && Aligned16(fk) && (!qk_norm || (Aligned16(q_norm) && Aligned16(k_norm)));
  const int vec_width = vec ? 4 : 1;
  const int units_per_head = p.half / vec_width;

  // Split each row by heads into blocks of at most kMaxThreads units, then
  // further until the launch has about kTargetBlocks blocks, so that decode's
  // few rows spread over the chip. With qk norm every block reads its row
  // once more for the norms' sums, so rows are split less; in place, one
  // block must own the row: another block's writes would race with its sums.
  const int total_heads = p.heads + p.key_heads;
  const int64_t fill_splits = std::clamp<int64_t>((kTargetBlocks + n - 1) / n, 1, total_heads);
  int64_t splits;
  if (qk_norm) {
    splits = fq == fq_pre ? 1 : std::min<int64_t>(fill_splits, kMaxQkNormSplit);
  } else {
    const int64_t heads_per_full_block = std::max(1, kMaxThreads / units_per_head);
    splits = std::max((total_heads + heads_per_full_block - 1) / heads_per_full_block, fill_splits);
  }
  p.heads_per_block = static_cast<int>((total_heads + splits - 1) / splits);
  splits = (total_heads + p.heads_per_block - 1) / p.heads_per_block;
  const int64_t units = int64_t{p.heads_per_block} * units_per_head;
  // All threads take part in a qk norm's full-row sums, so those blocks are full.
  const int min_threads = qk_norm ? kMaxThreads : 64;
  const int threads = static_cast<int>(std::clamp<int64_t>((units + 31) / 32 * 32, min_threads, kMaxThreads));
  const size_t shared_bytes = sizeof(float) * 2 * p.half;
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(splits));
  if (vec) {
    CUDA_RETURN_IF_ERROR(LaunchProgrammatic(FeatureMapRopeKernel<4>, grid, dim3(threads), shared_bytes, stream, p));
  } else {
    CUDA_RETURN_IF_ERROR(LaunchProgrammatic(FeatureMapRopeKernel<1>, grid, dim3(threads), shared_bytes, stream, p));
  }
  CUDA_RETURN_IF_LAUNCH_ERROR();
  return absl::OkStatus();
}

}  // namespace supra::cuda

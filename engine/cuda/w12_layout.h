// The device layout of the feed-forward input projection w12 (§3.12), and of
// its output ab, chosen so that one GEMV block owns both halves of SwiGLU.
//
// The checkpoint stores w12 as [W1; W2] ([2·FFN, D], rows 0..FFN−1 give
// a = W1·g, the rest b = W2·g). On the device the rows are interleaved in
// groups of 8: group k (16 rows from 16k) holds W1 rows 8k..8k+7 and then W2
// rows 8k..8k+7; when FFN % 8 != 0 the last group holds s = FFN − 8k rows of
// each (2s rows, still starting at 16k). A GEMV tile of 16 rows is therefore
// exactly one group: a_j and b_j come out of the same block, which writes
// silu(a)·b directly (gemv.h LaunchGemvSwiGlu). A GEMM over the interleaved
// w12 gives ab with its columns in the same order, which LaunchSwiGlu reads.
// Host and device code both use these maps (cuda_weights.cc reorders the
// checkpoint's rows once at upload).
#ifndef SUPRA_ENGINE_CUDA_W12_LAYOUT_H_
#define SUPRA_ENGINE_CUDA_W12_LAYOUT_H_

#include <cstdint>

#ifdef __CUDACC__
#define SUPRA_W12_HOST_DEVICE __host__ __device__
#else
#define SUPRA_W12_HOST_DEVICE
#endif

namespace supra::cuda {

inline constexpr int64_t kW12Group = 8;  // rows of W1 (and of W2) per group

// Rows of W1 (and of W2) in group `group`: 8, or fewer in the last group.
SUPRA_W12_HOST_DEVICE constexpr int64_t W12GroupSize(int64_t group, int64_t ffn) {
  return ffn - kW12Group * group < kW12Group ? ffn - kW12Group * group : kW12Group;
}

// The interleaved row (or ab column) of W1 row j (gate == false: a_j) or of
// W2 row j (gate == true: b_j), j < ffn.
SUPRA_W12_HOST_DEVICE constexpr int64_t InterleavedW12Row(int64_t j, bool second_half, int64_t ffn) {
  const int64_t group = j / kW12Group;
  return 2 * kW12Group * group + (second_half ? W12GroupSize(group, ffn) : 0) + j % kW12Group;
}

// The inverse: the checkpoint row ([W1; W2], W2 row j at ffn + j) that the
// interleaved row r < 2·ffn holds.
SUPRA_W12_HOST_DEVICE constexpr int64_t CheckpointW12Row(int64_t r, int64_t ffn) {
  const int64_t group = r / (2 * kW12Group), within = r % (2 * kW12Group);
  const int64_t size = W12GroupSize(group, ffn);
  return within < size ? kW12Group * group + within : ffn + kW12Group * group + (within - size);
}

}  // namespace supra::cuda

#undef SUPRA_W12_HOST_DEVICE

#endif  // SUPRA_ENGINE_CUDA_W12_LAYOUT_H_

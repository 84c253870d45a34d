// The projections: y = x · Wᵀ (+ b). Work is cut into blocks of up to 64 rows
// by 64 output features: a block's slice of W (64 rows × one k block) stays
// in L2 while its rows of x stream past, and blocks are independent, so they
// spread over the pool. Decode (a few rows) parallelises over the features.
#include <algorithm>

#include "engine/cpu/ops.h"

namespace supra::cpu {
namespace {

constexpr int64_t kBlockRows = 64;
constexpr int64_t kBlockFeatures = 64;
// Multiply-adds below which waking another thread costs more than it saves.
constexpr int64_t kMinWorkPerRange = 1 << 15;

}  // namespace

void Linear(ConstMatrix x, ConstMatrix weight, const float* bias, Matrix y, bool accumulate, ThreadPool* pool) {
  const int64_t n = x.rows, out = weight.rows, in = x.cols;
  if (n == 0 || out == 0) return;
  const int64_t row_blocks = (n + kBlockRows - 1) / kBlockRows;
  const int64_t feature_blocks = (out + kBlockFeatures - 1) / kBlockFeatures;
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r0 = item / feature_blocks * kBlockRows, c0 = item % feature_blocks * kBlockFeatures;
      const int64_t rows = std::min(kBlockRows, n - r0), cols = std::min(kBlockFeatures, out - c0);
      GemmNT(ConstMatrix{x.row(r0), rows, in, x.stride}, ConstMatrix{weight.row(c0), cols, in, weight.stride},
             Matrix{y.row(r0) + c0, rows, cols, y.stride}, accumulate);
      if (bias == nullptr) continue;
      for (int64_t r = r0; r < r0 + rows; ++r) {
        float* row = y.row(r);
        for (int64_t c = c0; c < c0 + cols; ++c) row[c] += bias[c];
      }
    }
  };
  const int64_t items = row_blocks * feature_blocks;
  const int64_t work_per_item = std::min(n, kBlockRows) * std::min(out, kBlockFeatures) * std::max<int64_t>(in, 1);
  const int64_t grain = std::max<int64_t>(1, kMinWorkPerRange / work_per_item);
  if (pool == nullptr) {
    run(0, items);
  } else {
    pool->ParallelFor(items, grain, run);
  }
}

}  // namespace supra::cpu

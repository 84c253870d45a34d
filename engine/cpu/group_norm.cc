#include <algorithm>
#include <cmath>

#include "engine/cpu/ops.h"

namespace supra::cpu {

void GroupNorm(Matrix x, int64_t group, double eps, ThreadPool* pool) {
  const int64_t groups_per_row = x.cols / group;
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      float* values = x.row(item / groups_per_row) + item % groups_per_row * group;
      double mean = 0;
      for (int64_t i = 0; i < group; ++i) mean += values[i];
      mean /= static_cast<double>(group);
      double variance = 0;  // biased, two-pass: the mean can dwarf the spread
      for (int64_t i = 0; i < group; ++i) variance += (values[i] - mean) * (values[i] - mean);
      variance /= static_cast<double>(group);
      const double inv_std = 1.0 / std::sqrt(variance + eps);
      for (int64_t i = 0; i < group; ++i) values[i] = static_cast<float>((values[i] - mean) * inv_std);
    }
  };
  const int64_t items = x.rows * groups_per_row;
  if (pool == nullptr) {
    run(0, items);
  } else {
    pool->ParallelFor(items, std::max<int64_t>(1, 8192 / std::max<int64_t>(group, 1)), run);
  }
}

}  // namespace supra::cpu

#include <algorithm>
#include <cmath>

#include "engine/cpu/ops.h"

namespace supra::cpu {

void RmsNorm(ConstMatrix x, const float* weight, double eps, Matrix y, ThreadPool* pool) {
  const int64_t d = x.cols;
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* in = x.row(r);
      float* out = y.row(r);
      // The mean of squares in float64: d can be 4096 and the rows are not
      // centred, so a float sum would lose digits the reference keeps.
      double sum_squares = 0;
      for (int64_t i = 0; i < d; ++i) sum_squares += double{in[i]} * in[i];
      const double inv_rms = 1.0 / std::sqrt(sum_squares / static_cast<double>(d) + eps);
      for (int64_t i = 0; i < d; ++i) out[i] = static_cast<float>(in[i] * inv_rms) * weight[i];
    }
  };
  if (pool == nullptr) {
    run(0, x.rows);
  } else {
    pool->ParallelFor(x.rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(d, 1)), run);
  }
}

}  // namespace supra::cpu

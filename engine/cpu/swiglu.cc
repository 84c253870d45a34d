#include <algorithm>
#include <cmath>

#include "engine/cpu/ops.h"

namespace supra::cpu {

void SwiGlu(ConstMatrix ab, Matrix out, ThreadPool* pool) {
  const int64_t ffn = out.cols;
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* a = ab.row(r);
      const float* b = a + ffn;
      float* o = out.row(r);
      // silu(a) = a·sigmoid(a) = a / (1 + e^−a); for a → −∞ this is a/∞ = −0.
      for (int64_t i = 0; i < ffn; ++i) o[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
    }
  };
  if (pool == nullptr) {
    run(0, out.rows);
  } else {
    pool->ParallelFor(out.rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(ffn, 1)), run);
  }
}

}  // namespace supra::cpu

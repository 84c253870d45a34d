#include <algorithm>

#include "engine/cpu/ops.h"

namespace supra::cpu {

void FeatureMap(Matrix x, const float* bias) {
  for (int64_t r = 0; r < x.rows; ++r) {
    float* row = x.row(r);
    for (int64_t i = 0; i < x.cols; ++i) row[i] = std::max(row[i] + bias[i], 0.0f);
  }
}

}  // namespace supra::cpu

#include <algorithm>
#include <cstring>

#include "engine/cpu/ops.h"

namespace supra::cpu {

void QkNorm(Matrix q, const float* q_weight, ConstMatrix k, const float* k_weight, int64_t heads, int64_t kv_heads,
            double eps, Matrix k_expanded, ThreadPool* pool) {
  const int64_t features = q.cols / heads;
  const int64_t group = heads / kv_heads;
  // Expand first: the key weight differs between copies of a kv head, so with
  // qk norm every query head ends up with its own key.
  for (int64_t r = 0; r < k.rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      std::memcpy(k_expanded.row(r) + h * features, k.row(r) + h / group * features, sizeof(float) * features);
    }
  }
  RmsNorm(ConstMatrix{q.data, q.rows, q.cols, q.stride}, q_weight, eps, q, pool);
  RmsNorm(ConstMatrix{k_expanded.data, k_expanded.rows, k_expanded.cols, k_expanded.stride}, k_weight, eps, k_expanded,
          pool);
}

}  // namespace supra::cpu

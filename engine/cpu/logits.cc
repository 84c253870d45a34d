#include "engine/cpu/ops.h"

namespace supra::cpu {

void FinalLogits(ConstMatrix x, const float* norm_weight, double eps, ConstMatrix output, Matrix normed, Matrix logits,
                 ThreadPool* pool) {
  RmsNorm(x, norm_weight, eps, normed, pool);
  Linear(ConstMatrix{normed.data, normed.rows, normed.cols, normed.stride}, output, nullptr, logits,
         /*accumulate=*/false, pool);
}

}  // namespace supra::cpu

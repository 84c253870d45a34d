#include <cstring>

#include "engine/cpu/ops.h"

namespace supra::cpu {

void EmbeddingGather(const float* table, int64_t dim, absl::Span<const int32_t> tokens, float* out) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::memcpy(out + static_cast<int64_t>(i) * dim, table + int64_t{tokens[i]} * dim, sizeof(float) * dim);
  }
}

}  // namespace supra::cpu

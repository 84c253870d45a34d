// The recurrent form of SUPRA's linear attention (§3.9), one token per
// sequence (the decode step): S = P + k̃⊗v; o = q·S; P ← γ·S. Each (row,
// head) owns its F×Dv state and is independent of the others, so the pool
// splits over them.
#include <algorithm>
#include <array>
#include <vector>

#include "engine/cpu/ops.h"
#include "engine/cpu/vec.h"

namespace supra::cpu {

void RecurrentAttention(const AttentionShape& shape, ConstMatrix q, ConstMatrix k, ConstMatrix v,
                        absl::Span<const float> gammas, absl::Span<float* const> states, Matrix out, ThreadPool* pool) {
  const int64_t heads = shape.heads, f_dim = shape.features, dv = shape.value_dim;
  const int64_t key_group = heads / shape.key_heads, value_group = heads / shape.value_heads;
  auto run = [&](int64_t begin, int64_t end) {
    // [Dv], one head's output before rounding; on the stack for the usual
    // head sizes, since this runs per layer per decode step.
    std::array<double, 256> stack_acc;
    std::vector<double> heap_acc(dv > 256 ? dv : 0);
    const absl::Span<double> acc = dv > 256 ? absl::MakeSpan(heap_acc) : absl::MakeSpan(stack_acc.data(), dv);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / heads, h = item % heads;
      const float* qh = q.row(r) + h * f_dim;              // [F]
      const float* kh = k.row(r) + h / key_group * f_dim;  // [F]
      const float* vh = v.row(r) + h / value_group * dv;   // [Dv]
      float* state = states[r] + h * f_dim * dv;           // [F, Dv]
      float* o = out.row(r) + h * dv;                      // [Dv]
      const float g = gammas[h];
      const Vec4 g4 = {g, g, g, g};
      // o = q·P + (q·k̃) v, then P ← γ (P + k̃⊗v). The same value as q·(P + k̃⊗v)
      // but rounded like the chunked form: the current token's term is one
      // dot product times v, so a q·k̃ with cancellation scales v instead of
      // bending each of its Dv components differently (GroupNorm, which
      // follows, would amplify that).
      // o = q·P + (q·k̃) v, summed in float64 as in the chunked form, then
      // P ← γ (P + k̃⊗v). The same value as q·(P + k̃⊗v), but the current
      // token's term is one dot product times v, as in the chunked form, so
      // a q·k̃ with cancellation scales v rather than bending each of its
      // components differently.
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t f = 0; f < f_dim; ++f) AxpyToDouble(qh[f], state + f * dv, acc.data(), dv);
      AxpyToDouble(Dot(qh, kh, f_dim), vh, acc.data(), dv);
      for (int64_t d = 0; d < dv; ++d) o[d] = static_cast<float>(acc[d]);
      for (int64_t f = 0; f < f_dim; ++f) {
        float* p = state + f * dv;
        const float kf = kh[f];
        const Vec4 k4 = {kf, kf, kf, kf};
        int64_t d = 0;
        for (; d + kLanes <= dv; d += kLanes) StoreVec(p + d, g4 * (LoadVec(p + d) + k4 * LoadVec(vh + d)));
        for (; d < dv; ++d) p[d] = g * (p[d] + kf * vh[d]);
      }
    }
  };
  const int64_t items = q.rows * heads;
  if (pool == nullptr) {
    run(0, items);
  } else {
    pool->ParallelFor(items, std::max<int64_t>(1, 16384 / std::max<int64_t>(f_dim * dv, 1)), run);
  }
}

}  // namespace supra::cpu

// Short float vectors for the CPU ops' inner loops.
//
// GCC only auto-vectorises a float reduction (a dot product) under
// -ffast-math, because vectorising reorders the sum. The ops therefore keep
// explicit 4-lane partial sums in a GCC/Clang vector type: the compiler maps
// it to SSE registers at the baseline x86-64 target (and to NEON elsewhere),
// and the summation order is fixed by the source, not by the optimiser.
// Element-wise loops use the same type: at -O2 GCC 12's "very cheap" cost
// model does not vectorise a loop whose trip count is not a known multiple
// of the vector width, which is every loop here.
#ifndef SUPRA_ENGINE_CPU_VEC_H_
#define SUPRA_ENGINE_CPU_VEC_H_

#include <cstdint>
#include <cstring>

namespace supra::cpu {

inline constexpr int kLanes = 4;
using Vec4 = float __attribute__((vector_size(kLanes * sizeof(float))));

// Four doubles: the attention's accumulators (see chunked_attention.cc).
using Vec4d = double __attribute__((vector_size(4 * sizeof(double))));

// Unaligned load/store (activations and strided views are not 16-byte aligned).
inline Vec4 LoadVec(const float* p) {
  Vec4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void StoreVec(float* p, Vec4 v) { std::memcpy(p, &v, sizeof(v)); }

// Sum of the lanes in a fixed order.
inline float SumLanes(Vec4 v) { return (v[0] + v[1]) + (v[2] + v[3]); }

// dot(a, b) over n floats: 4 lanes by 2 accumulators, then the scalar tail.
inline float Dot(const float* a, const float* b, int64_t n) {
  Vec4 acc0 = {0, 0, 0, 0}, acc1 = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    acc0 += LoadVec(a + i) * LoadVec(b + i);
    acc1 += LoadVec(a + i + kLanes) * LoadVec(b + i + kLanes);
  }
  if (i + kLanes <= n) {
    acc0 += LoadVec(a + i) * LoadVec(b + i);
    i += kLanes;
  }
  float sum = SumLanes(acc0 + acc1);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// y[i] += alpha * x[i].
inline void Axpy(float alpha, const float* x, float* y, int64_t n) {
  const Vec4 a = {alpha, alpha, alpha, alpha};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) StoreVec(y + i, LoadVec(y + i) + a * LoadVec(x + i));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

// y[i] *= alpha.
inline void Scale(float alpha, float* y, int64_t n) {
  const Vec4 a = {alpha, alpha, alpha, alpha};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) StoreVec(y + i, a * LoadVec(y + i));
  for (; i < n; ++i) y[i] *= alpha;
}

// y[i] += alpha * x[i] with y in float64: sums of many attention terms.
inline void AxpyToDouble(double alpha, const float* x, double* y, int64_t n) {
  const Vec4d a = {alpha, alpha, alpha, alpha};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Vec4d yv;
    std::memcpy(&yv, y + i, sizeof(yv));
    yv += a * __builtin_convertvector(LoadVec(x + i), Vec4d);
    std::memcpy(y + i, &yv, sizeof(yv));
  }
  for (; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace supra::cpu

#endif  // SUPRA_ENGINE_CPU_VEC_H_

// exp(x) for x <= 0 in float, written as straight-line arithmetic so that GCC
// vectorizes loops over it (the file must be compiled with
// -fno-trapping-math so that the two selects if-convert). glibc's expf does
// not vectorize and costs ~4x more per element over a 32000-token vocabulary.
// Cephes' expf polynomial: relative error below 1e-7 on [-87, 0]; exactly 1
// at 0; 0 below -87 (where exp is under 2^-125, far below any weight that
// can matter next to the most likely token's 1) and at -inf.
#ifndef SUPRA_ENGINE_SAMPLING_FAST_EXP_H_
#define SUPRA_ENGINE_SAMPLING_FAST_EXP_H_

#include <bit>
#include <cstdint>

namespace supra::sampling_internal {

inline float ExpNonPositive(float x) {
  constexpr float kMin = -87.0f;
  const float xc = x < kMin ? kMin : x;  // also keeps -inf out of the int conversion
  // n = round(x / ln 2) (ties away from zero; x <= 0), r = x - n ln 2 in
  // [-ln2 / 2, ln2 / 2], ln 2 split in two for an exact product.
  const float n = static_cast<float>(static_cast<int32_t>(xc * 1.44269504088896341f - 0.5f));
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  // 2^n as float bits; n >= -126 keeps it a normal number.
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return x < kMin ? 0.0f : y * scale;
}

}  // namespace supra::sampling_internal

#endif  // SUPRA_ENGINE_SAMPLING_FAST_EXP_H_

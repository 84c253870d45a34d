// Rotary position embedding (§3.6), applied to the feature-mapped queries and
// keys. Positions grow without bound in a long conversation, so the angle
// p · inv_freq is formed and reduced modulo 2π in float64: in float32 a
// position near 2^31 would keep no fractional radians at all.
#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "engine/backend.h"
#include "engine/cpu/ops.h"
#include "engine/cpu/vec.h"

namespace supra::cpu {

std::vector<double> RopeInverseFrequencies(const ModelConfig& config) {
  const int dh = config.head_dim();
  std::vector<double> inv_freq(dh / 2);
  for (int i = 0; i < dh / 2; ++i) {
    inv_freq[i] = 1.0 / (config.rotary_scale * std::pow(config.rotary_base_frequency, 2.0 * i / dh));
  }
  return inv_freq;
}

absl::Status RopeAngles(absl::Span<const int64_t> positions, absl::Span<const double> inv_freq, float* cos,
                        float* sin) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  for (size_t r = 0; r < positions.size(); ++r) {
    const int64_t p = positions[r];
    if (p < 0) return absl::InvalidArgumentError(absl::StrCat("negative position ", p));
    if (p > kMaxPosition) {
      return absl::OutOfRangeError(
          absl::StrCat("position ", p, " is beyond the largest supported position ", kMaxPosition));
    }
    for (int64_t i = 0; i < half; ++i) {
      const double angle = std::remainder(static_cast<double>(p) * inv_freq[i], 2.0 * std::numbers::pi);
      cos[r * half + i] = static_cast<float>(std::cos(angle));
      sin[r * half + i] = static_cast<float>(std::sin(angle));
    }
  }
  return absl::OkStatus();
}

void ApplyRope(Matrix x, int64_t heads, int64_t half, const float* cos, const float* sin, float scale) {
  const Vec4 s4 = {scale, scale, scale, scale};
  for (int64_t r = 0; r < x.rows; ++r) {
    const float* c = cos + r * half;
    const float* s = sin + r * half;
    for (int64_t h = 0; h < heads; ++h) {
      float* x1 = x.row(r) + h * 2 * half;  // first half of the head vector
      float* x2 = x1 + half;                // second half
      int64_t i = 0;
      for (; i + kLanes <= half; i += kLanes) {
        const Vec4 a = LoadVec(x1 + i), b = LoadVec(x2 + i), cv = LoadVec(c + i), sv = LoadVec(s + i);
        StoreVec(x1 + i, (a * cv - b * sv) * s4);
        StoreVec(x2 + i, (b * cv + a * sv) * s4);
      }
      for (; i < half; ++i) {
        const float a = x1[i], b = x2[i];
        x1[i] = (a * c[i] - b * s[i]) * scale;
        x2[i] = (b * c[i] + a * s[i]) * scale;
      }
    }
  }
}

}  // namespace supra::cpu

// Bit-exact checks of the fp16 / bf16 conversions in engine/util/dtype.h, against
// hand-computed bit patterns and against an independent nearest-value search.
#include "engine/util/dtype.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace supra {
namespace {

float Bits(uint32_t bits) { return std::bit_cast<float>(bits); }

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF64), 8u);
  EXPECT_EQ(DTypeSize(DType::kI32), 4u);
  EXPECT_EQ(DTypeSize(DType::kI64), 8u);
  EXPECT_EQ(DTypeName(DType::kBF16), "bfloat16");
  EXPECT_TRUE(IsWeightDType(DType::kF16));
  EXPECT_FALSE(IsWeightDType(DType::kI64));
}

TEST(BF16Test, KnownValues) {
  EXPECT_EQ(FloatToBF16(1.0f), 0x3F80);
  EXPECT_EQ(FloatToBF16(-2.0f), 0xC000);
  EXPECT_EQ(FloatToBF16(0.0f), 0x0000);
  EXPECT_EQ(FloatToBF16(-0.0f), 0x8000);
  EXPECT_EQ(FloatToBF16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(FloatToBF16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(BF16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(BF16ToFloat(0xC049), -3.140625f);
  EXPECT_EQ(std::bit_cast<uint32_t>(BF16ToFloat(0x8000)), 0x80000000u);
}

TEST(BF16Test, RoundsToNearestEven) {
  EXPECT_EQ(FloatToBF16(Bits(0x3F808000)), 0x3F80);  // tie, lower is even: down
  EXPECT_EQ(FloatToBF16(Bits(0x3F818000)), 0x3F82);  // tie, lower is odd: up
  EXPECT_EQ(FloatToBF16(Bits(0x3F808001)), 0x3F81);  // above the tie: up
  EXPECT_EQ(FloatToBF16(Bits(0x3F807FFF)), 0x3F80);  // below the tie: down
  EXPECT_EQ(FloatToBF16(Bits(0xBF818000)), 0xBF82);  // sign does not matter
  EXPECT_EQ(FloatToBF16(Bits(0x3FFF8000)), 0x4000);  // carry into the exponent
  EXPECT_EQ(FloatToBF16(Bits(0x7F7F8000)), 0x7F80);  // largest ties overflow to inf
  EXPECT_EQ(FloatToBF16(Bits(0x7F7F7FFF)), 0x7F7F);
}

TEST(BF16Test, Subnormals) {
  EXPECT_EQ(FloatToBF16(Bits(0x00010000)), 0x0001);
  EXPECT_EQ(FloatToBF16(Bits(0x00008000)), 0x0000);  // tie to even zero
  EXPECT_EQ(FloatToBF16(Bits(0x00018000)), 0x0002);  // tie to even 2
  EXPECT_EQ(FloatToBF16(Bits(0x007FFFFF)), 0x0080);  // rounds up to the smallest normal
  EXPECT_EQ(BF16ToFloat(0x0001), Bits(0x00010000));
}

TEST(BF16Test, NaNStaysQuietNaN) {
  for (uint32_t bits : {0x7FC00000u, 0x7F800001u, 0xFFC00001u, 0x7FFFFFFFu}) {
    const uint16_t b = FloatToBF16(Bits(bits));
    EXPECT_EQ(b & 0x7F80, 0x7F80) << std::hex << bits;
    EXPECT_NE(b & 0x007F, 0) << std::hex << bits;
    EXPECT_EQ(b & 0x8000, (bits >> 16) & 0x8000);
    EXPECT_TRUE(std::isnan(BF16ToFloat(b)));
  }
}

TEST(BF16Test, EveryValueRoundTrips) {
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const float f = BF16ToFloat(static_cast<uint16_t>(b));
    EXPECT_EQ(std::bit_cast<uint32_t>(f), b << 16);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(BF16ToFloat(FloatToBF16(f))));
    } else {
      ASSERT_EQ(FloatToBF16(f), b) << std::hex << b;
    }
  }
}

TEST(HalfTest, KnownValues) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xC000);
  EXPECT_EQ(FloatToHalf(0.5f), 0x3800);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7BFF);
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(FloatToHalf(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(FloatToHalf(1e10f), 0x7C00);
  EXPECT_EQ(FloatToHalf(-1e10f), 0xFC00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(HalfToFloat(0xC248), -3.140625f);
  EXPECT_EQ(HalfToFloat(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(HalfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(std::bit_cast<uint32_t>(HalfToFloat(0x8000)), 0x80000000u);
}

TEST(HalfTest, RoundsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -10);                               // at 1.0
  EXPECT_EQ(FloatToHalf(1.0f + ulp / 2), 0x3C00);                        // tie, even below
  EXPECT_EQ(FloatToHalf(1.0f + 3 * ulp / 2), 0x3C02);                    // tie, odd below
  EXPECT_EQ(FloatToHalf(std::nextafter(1.0f + ulp / 2, 2.0f)), 0x3C01);  // just above the tie
  EXPECT_EQ(FloatToHalf(std::nextafter(1.0f + ulp / 2, 0.0f)), 0x3C00);  // just below
  EXPECT_EQ(FloatToHalf(-(1.0f + 3 * ulp / 2)), 0xBC02);
  EXPECT_EQ(FloatToHalf(2.0f - ulp / 2), 0x4000);  // carry into the exponent
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7C00);        // tie above the max: inf
  EXPECT_EQ(FloatToHalf(std::nextafter(65520.0f, 0.0f)), 0x7BFF);
}

TEST(HalfTest, Subnormals) {
  const float tiny = std::ldexp(1.0f, -24);  // smallest half subnormal
  EXPECT_EQ(FloatToHalf(tiny), 0x0001);
  EXPECT_EQ(FloatToHalf(-tiny), 0x8001);
  EXPECT_EQ(FloatToHalf(tiny / 2), 0x0000);                        // tie to even zero
  EXPECT_EQ(FloatToHalf(std::nextafter(tiny / 2, 1.0f)), 0x0001);  // just above the tie
  EXPECT_EQ(FloatToHalf(3 * tiny / 2), 0x0002);                    // tie to even 2
  EXPECT_EQ(FloatToHalf(5 * tiny / 2), 0x0002);                    // tie to even 2
  EXPECT_EQ(FloatToHalf(1023.5f * tiny), 0x0400);                  // tie rounds up into the normals
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -30)), 0x0000);
  EXPECT_EQ(FloatToHalf(Bits(0x00000001)), 0x0000);  // float subnormal
  EXPECT_EQ(HalfToFloat(0x0001), tiny);
  EXPECT_EQ(HalfToFloat(0x03FF), 1023 * tiny);
  EXPECT_EQ(HalfToFloat(0x8200), -512 * tiny);
}

TEST(HalfTest, NaNStaysNaN) {
  for (uint32_t bits : {0x7FC00000u, 0x7F800001u, 0xFFC00000u, 0x7FFFFFFFu}) {
    const uint16_t h = FloatToHalf(Bits(bits));
    EXPECT_EQ(h & 0x7C00, 0x7C00);
    EXPECT_NE(h & 0x03FF, 0);
    EXPECT_EQ(h & 0x8000, (bits >> 16) & 0x8000);
  }
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7E00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7C01)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0xFE00)));
}

TEST(HalfTest, EveryValueRoundTrips) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(((h >> 10) & 0x1F) == 0x1F && (h & 0x3FF) != 0);
      continue;
    }
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << h;
  }
}

// Nearest half by search over all finite positive halves, ties to even; an
// independent reference for FloatToHalf on random inputs.
uint16_t ReferenceFloatToHalf(float value) {
  static const std::vector<double> kValues = [] {
    std::vector<double> v;
    for (uint32_t h = 0; h <= 0x7BFF; ++h) v.push_back(HalfToFloat(static_cast<uint16_t>(h)));
    v.push_back(65536.0);  // 0x7C00: infinity stands where the next value would be
    return v;
  }();
  const uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  const double x = std::fabs(static_cast<double>(value));
  if (x >= 65520.0) return sign | 0x7C00;  // halfway to 65536 and above round to inf
  const auto upper = std::lower_bound(kValues.begin(), kValues.end(), x);
  const uint16_t hi = static_cast<uint16_t>(upper - kValues.begin());
  if (kValues[hi] == x || hi == 0) return sign | hi;
  const uint16_t lo = hi - 1;
  const double below = x - kValues[lo];
  const double above = kValues[hi] - x;
  if (below < above) return sign | lo;
  if (above < below) return sign | hi;
  return sign | ((lo & 1) ? hi : lo);
}

TEST(HalfTest, MatchesReferenceOnRandomFloats) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> exponent(-27, 17);
  std::uniform_int_distribution<uint32_t> mantissa(0, 0x7FFFFF);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t bits =
        (static_cast<uint32_t>(i & 1) << 31) | (static_cast<uint32_t>(exponent(rng) + 127) << 23) | mantissa(rng);
    const float f = Bits(bits);
    ASSERT_EQ(FloatToHalf(f), ReferenceFloatToHalf(f)) << std::hex << bits;
  }
}

// |value| of a bf16, with the infinity pattern standing for 2^128 (where the next
// finite value would be if the exponent range went on), so that rounding to
// infinity is judged like any other rounding.
double BF16Magnitude(uint16_t b) {
  return (b & 0x7FFF) == 0x7F80 ? std::ldexp(1.0, 128) : std::fabs(static_cast<double>(BF16ToFloat(b)));
}

TEST(BF16Test, MatchesReferenceOnRandomFloats) {
  std::mt19937 rng(6789);
  std::uniform_int_distribution<uint32_t> any(0, 0xFFFFFFFF);
  for (int i = 0; i < 200000; ++i) {
    const float f = Bits(any(rng));
    if (std::isnan(f)) continue;
    // Neighbours are the truncation and the next bf16 up (in magnitude).
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    const uint16_t lo = static_cast<uint16_t>(bits >> 16);
    const uint16_t hi = static_cast<uint16_t>(lo + 1);
    const double x = std::fabs(static_cast<double>(f));
    if (std::isinf(f)) continue;
    const double below = x - BF16Magnitude(lo);
    const double above = BF16Magnitude(hi) - x;
    const uint16_t expected = below < above ? lo : above < below ? hi : ((lo & 1) ? hi : lo);
    ASSERT_EQ(FloatToBF16(f), expected) << std::hex << bits;
  }
}

TEST(ConvertToFloat32Test, EveryFloatDTypeFromUnalignedBytes) {
  alignas(8) std::byte buffer[1 + 3 * 8];
  std::byte* src = buffer + 1;  // deliberately misaligned
  float out[3];

  const float f32[3] = {1.5f, -2.25f, 3e-5f};
  std::memcpy(src, f32, sizeof(f32));
  ASSERT_TRUE(ConvertToFloat32(DType::kF32, src, 3, out));
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[2], 3e-5f);

  const uint16_t bf16[3] = {0x3F80, 0xC010, 0x0001};
  std::memcpy(src, bf16, sizeof(bf16));
  ASSERT_TRUE(ConvertToFloat32(DType::kBF16, src, 3, out));
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.25f);
  EXPECT_EQ(out[2], Bits(0x00010000));

  const uint16_t f16[3] = {0x3C00, 0xC080, 0x0001};
  std::memcpy(src, f16, sizeof(f16));
  ASSERT_TRUE(ConvertToFloat32(DType::kF16, src, 3, out));
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.25f);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -24));

  const double f64[3] = {0.1, -1e300, 2.5};
  std::memcpy(src, f64, sizeof(f64));
  ASSERT_TRUE(ConvertToFloat32(DType::kF64, src, 3, out));
  EXPECT_EQ(out[0], 0.1f);
  EXPECT_EQ(out[1], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(out[2], 2.5f);

  EXPECT_FALSE(ConvertToFloat32(DType::kI32, src, 3, out));
  EXPECT_FALSE(ConvertToFloat32(DType::kI64, src, 3, out));
}

}  // namespace
}  // namespace supra

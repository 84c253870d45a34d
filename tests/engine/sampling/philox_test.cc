#include "engine/sampling/philox.h"

#include <cmath>

#include "gtest/gtest.h"

namespace supra {
namespace {

// Random123's known-answer vectors for Philox4x32-10 (tests/kat_vectors).
TEST(PhiloxTest, KnownAnswers) {
  EXPECT_EQ(Philox4x32_10({0, 0, 0, 0}, {0, 0}), (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(Philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(Philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(PhiloxTest, UniformIsAConstexprFunctionOfSeedAndIndex) {
  static_assert(UniformForToken(7, 3) == UniformForToken(7, 3));
  EXPECT_NE(UniformForToken(7, 3), UniformForToken(7, 4));
  EXPECT_NE(UniformForToken(7, 3), UniformForToken(8, 3));
  // The high words of seed and index matter too.
  EXPECT_NE(UniformForToken(7, 3), UniformForToken(7 + (uint64_t{1} << 32), 3));
  EXPECT_NE(UniformForToken(7, 3), UniformForToken(7, 3 + (uint64_t{1} << 32)));
}

// Moments of 1e5 draws: mean 1/2 and variance 1/12 within 5 standard errors.
TEST(PhiloxTest, UniformHasTheRightMoments) {
  constexpr int kN = 100000;
  double sum = 0;
  double sum_sq = 0;
  for (int i = 0; i < kN; ++i) {
    const double u = UniformForToken(42, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum_sq += u * u;
  }
  const double mean = sum / kN;
  const double var = sum_sq / kN - mean * mean;
  EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12 / kN));
  // Standard error of a sample variance: sqrt((mu4 - sigma^4) / n) = sqrt((1/80 - 1/144) / n).
  EXPECT_NEAR(var, 1.0 / 12, 5 * std::sqrt(1.0 / 180 / kN));
}

}  // namespace
}  // namespace supra

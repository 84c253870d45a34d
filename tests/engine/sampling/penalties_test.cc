#include "engine/sampling/penalties.h"

#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace supra {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

SamplingParams Penalties(float repetition, float presence, float frequency, int32_t window = 256) {
  SamplingParams p;
  p.repetition_penalty = repetition;
  p.presence_penalty = presence;
  p.frequency_penalty = frequency;
  p.penalty_window = window;
  return p;
}

TEST(PenaltiesTest, RepetitionDividesPositiveAndMultipliesNegativeLogits) {
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, kNegInf, 0.0f};
  const std::vector<int32_t> history = {0, 1, 1, 4, 5, 3};
  ASSERT_TRUE(ApplyPenalties(Penalties(2.0f, 0, 0), history, absl::MakeSpan(logits)).ok());
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -2.0f, 0.5f, 1.5f, kNegInf, 0.0f}));
}

TEST(PenaltiesTest, PresenceOnceFrequencyPerOccurrence) {
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, kNegInf, 0.0f};
  const std::vector<int32_t> history = {0, 1, 1, 4, 5, 3, 1};
  ASSERT_TRUE(ApplyPenalties(Penalties(1.0f, 0.5f, 0.25f), history, absl::MakeSpan(logits)).ok());
  EXPECT_EQ(logits, (std::vector<float>{2.0f - 0.75f, -1.0f - 0.5f - 0.75f, 0.5f, 3.0f - 0.75f, kNegInf, -0.75f}));
}

TEST(PenaltiesTest, RepetitionThenPresenceAndFrequency) {
  std::vector<float> logits = {4.0f, -2.0f};
  const std::vector<int32_t> history = {0, 0, 1};
  ASSERT_TRUE(ApplyPenalties(Penalties(2.0f, 1.0f, 0.5f), history, absl::MakeSpan(logits)).ok());
  EXPECT_EQ(logits, (std::vector<float>{4.0f / 2 - 1.0f - 0.5f * 2, -2.0f * 2 - 1.0f - 0.5f}));
}

TEST(PenaltiesTest, NegativePenaltiesEncourageRepetition) {
  std::vector<float> logits = {1.0f, 1.0f};
  const std::vector<int32_t> history = {1};
  ASSERT_TRUE(ApplyPenalties(Penalties(1.0f, -1.0f, -0.5f), history, absl::MakeSpan(logits)).ok());
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 2.5f}));
}

TEST(PenaltiesTest, OnlyTheLastWindowTokensCount) {
  std::vector<float> logits = {1.0f, 1.0f, 1.0f};
  // Token 0 and the first token-1 fall outside a window of 2.
  const std::vector<int32_t> history = {0, 1, 2, 1};
  ASSERT_TRUE(ApplyPenalties(Penalties(1.0f, 0.0f, 1.0f, 2), history, absl::MakeSpan(logits)).ok());
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 0.0f, 0.0f}));

  std::vector<float> untouched = {1.0f, 1.0f, 1.0f};
  ASSERT_TRUE(ApplyPenalties(Penalties(3.0f, 1.0f, 1.0f, 0), history, absl::MakeSpan(untouched)).ok());
  EXPECT_EQ(untouched, (std::vector<float>{1.0f, 1.0f, 1.0f}));
}

TEST(PenaltiesTest, FiniteLogitsStayFinite) {
  std::vector<float> logits = {3e38f, -3e38f};
  const std::vector<int32_t> history = {0, 1};
  ASSERT_TRUE(ApplyPenalties(Penalties(1e-3f, 0, 0), history, absl::MakeSpan(logits)).ok());
  EXPECT_EQ(logits[0], std::numeric_limits<float>::max());
  EXPECT_EQ(logits[1], -3e38f * 1e-3f);
  std::vector<float> big = {-3e38f};
  const std::vector<int32_t> one = {0};
  ASSERT_TRUE(ApplyPenalties(Penalties(100.0f, 0, 0), one, absl::MakeSpan(big)).ok());
  EXPECT_EQ(big[0], -std::numeric_limits<float>::max());
}

TEST(PenaltiesTest, IdsOutsideTheVocabInTheWindowAreRejected) {
  std::vector<float> logits = {1.0f, 1.0f};
  EXPECT_EQ(ApplyPenalties(Penalties(1.5f, 0, 0), std::vector<int32_t>{0, 2}, absl::MakeSpan(logits)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyPenalties(Penalties(1.5f, 0, 0), std::vector<int32_t>{-1, 0}, absl::MakeSpan(logits)).code(),
            absl::StatusCode::kInvalidArgument);
  // Outside the window they are not read.
  EXPECT_TRUE(ApplyPenalties(Penalties(1.5f, 0, 0, 1), std::vector<int32_t>{7, 0}, absl::MakeSpan(logits)).ok());
}

}  // namespace
}  // namespace supra

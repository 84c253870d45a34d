#include "engine/serving/stop_matcher.h"

#include "gtest/gtest.h"

namespace supra {
namespace {

TEST(StopMatcherTest, HoldsBackPossibleStartAndDropsMatch) {
  StopMatcher m({"END", "xy"});
  EXPECT_EQ(m.Push("abc E"), "abc ");  // "E" could start "END"
  EXPECT_EQ(m.Push("N"), "");
  EXPECT_EQ(m.Push("Dtail"), "");
  ASSERT_TRUE(m.matched().has_value());
  EXPECT_EQ(*m.matched(), 0u);
}

TEST(StopMatcherTest, ReleasesTextThatCanNoLongerMatch) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.Push("EN"), "");
  EXPECT_EQ(m.Push("x"), "ENx");
  EXPECT_EQ(m.Push("E"), "");
  EXPECT_EQ(m.Flush(), "E");
  EXPECT_FALSE(m.matched().has_value());
}

TEST(StopMatcherTest, EarliestMatchWins) {
  StopMatcher m({"cd", "b"});
  EXPECT_EQ(m.Push("abcd"), "a");
  EXPECT_EQ(*m.matched(), 1u);
}

}  // namespace
}  // namespace supra

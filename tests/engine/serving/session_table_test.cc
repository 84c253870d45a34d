#include "engine/serving/session_id.h"

#include <string>

#include "gtest/gtest.h"

namespace supra {
namespace {

TEST(SessionIdTest, ValidatesCharactersAndLength) {
  EXPECT_TRUE(ValidateSessionId("abc-DEF_123").ok());
  EXPECT_TRUE(ValidateSessionId(std::string(128, 'a')).ok());
  EXPECT_EQ(ValidateSessionId("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSessionId(std::string(129, 'a')).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSessionId("a/b").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSessionId("a b").code(), absl::StatusCode::kInvalidArgument);
}

TEST(SessionIdTest, GeneratedIdsAreValidAndDistinct) {
  const std::string a = NewSessionId(), b = NewSessionId();
  EXPECT_TRUE(ValidateSessionId(a).ok());
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace supra

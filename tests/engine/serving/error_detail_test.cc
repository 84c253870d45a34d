#include "engine/util/error_detail.h"

#include "gtest/gtest.h"

namespace supra {
namespace {

TEST(ErrorDetailTest, RoundTripsThroughTheStatus) {
  const ErrorDetail detail{"SESSION_LENGTH_MISMATCH",
                           "expected_session_length",
                           {{"actual_length", "12"}, {"session_id", "a:b:c"}, {"empty", ""}},
                           absl::Milliseconds(250)};
  const absl::Status s = WithErrorDetail(absl::FailedPreconditionError("mismatch"), detail);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "mismatch");
  const std::optional<ErrorDetail> got = GetErrorDetail(s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->reason, detail.reason);
  EXPECT_EQ(got->field, detail.field);
  EXPECT_EQ(got->metadata, detail.metadata);
  ASSERT_TRUE(got->retry_after);
  EXPECT_EQ(*got->retry_after, absl::Milliseconds(250));
}

TEST(ErrorDetailTest, AbsentOrOk) {
  EXPECT_FALSE(GetErrorDetail(absl::InternalError("x")));
  EXPECT_TRUE(WithErrorDetail(absl::OkStatus(), {"R", "", {}, std::nullopt}).ok());
  const absl::Status s = MakeError(absl::StatusCode::kInvalidArgument, "bad", "INVALID_PROMPT", "prompt");
  ASSERT_TRUE(GetErrorDetail(s));
  EXPECT_EQ(GetErrorDetail(s)->field, "prompt");
  EXPECT_FALSE(GetErrorDetail(s)->retry_after);
}

}  // namespace
}  // namespace supra

#include "engine/sampling/sampling_params.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace supra {
namespace {

using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(ValidateSamplingParamsTest, DefaultsAndBoundariesAreValid) {
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams{}).ok());
  SamplingParams p;
  p.temperature = 0;
  p.top_k = 1;
  p.top_p = 1;
  p.min_p = 1;
  p.repetition_penalty = 0.01f;
  p.presence_penalty = -2;
  p.frequency_penalty = 2;
  p.penalty_window = 0;
  EXPECT_TRUE(ValidateSamplingParams(p).ok());
  p.min_p = 0;
  p.top_p = 1e-6f;
  p.presence_penalty = 2;
  p.frequency_penalty = -2;
  EXPECT_TRUE(ValidateSamplingParams(p).ok());
}

struct BadCase {
  std::string field;
  std::string value_text;  // how the value appears in the message
  std::function<void(SamplingParams&)> set;
};

TEST(ValidateSamplingParamsTest, EachBadFieldIsNamedWithItsValue) {
  const std::vector<BadCase> cases = {
      {"temperature", "-0.5", [](SamplingParams& p) { p.temperature = -0.5f; }},
      {"temperature", "nan", [](SamplingParams& p) { p.temperature = kNaN; }},
      {"temperature", "inf", [](SamplingParams& p) { p.temperature = kInf; }},
      {"top_k", "-1", [](SamplingParams& p) { p.top_k = -1; }},
      {"top_p", "0", [](SamplingParams& p) { p.top_p = 0; }},
      {"top_p", "1.5", [](SamplingParams& p) { p.top_p = 1.5f; }},
      {"top_p", "nan", [](SamplingParams& p) { p.top_p = kNaN; }},
      {"min_p", "-0.25", [](SamplingParams& p) { p.min_p = -0.25f; }},
      {"min_p", "1.5", [](SamplingParams& p) { p.min_p = 1.5f; }},
      {"min_p", "nan", [](SamplingParams& p) { p.min_p = kNaN; }},
      {"repetition_penalty", "0", [](SamplingParams& p) { p.repetition_penalty = 0; }},
      {"repetition_penalty", "-1", [](SamplingParams& p) { p.repetition_penalty = -1; }},
      {"repetition_penalty", "nan", [](SamplingParams& p) { p.repetition_penalty = kNaN; }},
      {"repetition_penalty", "inf", [](SamplingParams& p) { p.repetition_penalty = kInf; }},
      {"presence_penalty", "2.5", [](SamplingParams& p) { p.presence_penalty = 2.5f; }},
      {"presence_penalty", "-2.5", [](SamplingParams& p) { p.presence_penalty = -2.5f; }},
      {"presence_penalty", "nan", [](SamplingParams& p) { p.presence_penalty = kNaN; }},
      {"frequency_penalty", "3", [](SamplingParams& p) { p.frequency_penalty = 3; }},
      {"frequency_penalty", "-2.5", [](SamplingParams& p) { p.frequency_penalty = -2.5f; }},
      {"frequency_penalty", "nan", [](SamplingParams& p) { p.frequency_penalty = kNaN; }},
      {"penalty_window", "-1", [](SamplingParams& p) { p.penalty_window = -1; }},
  };
  for (const BadCase& c : cases) {
    SamplingParams p;
    c.set(p);
    const absl::Status status = ValidateSamplingParams(p);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field << " " << c.value_text;
    EXPECT_THAT(status.message(), HasSubstr(c.field + " must be"));
    EXPECT_THAT(status.message(), HasSubstr("got " + c.value_text));
  }
}

}  // namespace
}  // namespace supra

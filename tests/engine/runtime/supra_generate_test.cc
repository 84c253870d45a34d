// Runs the supra-generate binary as a user would and checks its output and
// exit codes.
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/checkpoint/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace supra {
namespace {

using ::testing::HasSubstr;

const std::string kData = SUPRA_TEST_DATA_DIR;

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

RunResult RunGenerate(const std::string& args) {
  const std::string command = std::string(SUPRA_GENERATE_BIN) + " " + args + " 2>&1";
  RunResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::vector<int32_t> GoldenI32(const std::string& model, const std::string& name) {
  auto golden = ReadSafetensors(kData + "/golden/" + model + ".safetensors");
  EXPECT_TRUE(golden.ok()) << golden.status();
  const TensorView* t = golden->Find(name);
  std::vector<int32_t> out(t->numel());
  std::memcpy(out.data(), t->data, t->nbytes);
  return out;
}

TEST(SupraGenerateTest, GreedyIdsMatchTheReference) {
  const std::vector<int32_t> prompt = GoldenI32("h6", "tokens");
  const std::vector<int32_t> expected = GoldenI32("h6", "greedy_tokens");
  const RunResult r = RunGenerate("--model " + kData + "/models/h6 --prompt_ids " + absl::StrJoin(prompt, ",") +
                          " --print_ids --ignore_eos --max_tokens " + std::to_string(expected.size()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<int32_t> got;
  for (absl::string_view line : absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
    int32_t id;
    ASSERT_TRUE(absl::SimpleAtoi(line, &id)) << line;
    got.push_back(id);
  }
  EXPECT_EQ(got, expected);
}

TEST(SupraGenerateTest, TextPromptAndLogits) {
  const RunResult r = RunGenerate("--model " + kData + "/models/mha --prompt 'Bonjour, le monde' --max_tokens 5 --print_logits 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("logits:"));
}

TEST(SupraGenerateTest, ExitCodes) {
  EXPECT_EQ(RunGenerate("").exit_code, 2);
  EXPECT_EQ(RunGenerate("--model " + kData + "/models/mha").exit_code, 2);  // no prompt
  EXPECT_EQ(RunGenerate("--model " + kData + "/models/mha --prompt_ids 1,99999").exit_code, 2);
  EXPECT_EQ(RunGenerate("--model " + kData + "/models/mha --prompt hi --top_p 0").exit_code, 2);
  const RunResult missing = RunGenerate("--model /nonexistent/model --prompt hi");
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_THAT(missing.output, HasSubstr("/nonexistent/model"));
  EXPECT_THAT(RunGenerate("--help").output, HasSubstr("--model"));
}

}  // namespace
}  // namespace supra

// supra-cli against the real supra-server, both as processes, as a user
// runs them (README): exit codes and output of the main commands.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "tests/server/server_test_util.h"

namespace supra::server::testing {
namespace {

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout; stderr goes to the test's log
};

CliResult Cli(int port, const std::string& args, const std::string& env = "") {
  const std::string command = env + " " + CliBinary() + " --target 127.0.0.1:" + std::to_string(port) + " " + args;
  CliResult r;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(CliEndToEndTest, GenerateSessionsAndErrorsThroughTheRealServer) {
  ServerProcess server({});
  ASSERT_GT(server.port(), 0) << server.log();
  const int port = server.port();
  EXPECT_EQ(Cli(port, "health").exit_code, 0);

  const CliResult once = Cli(port, "generate --max-tokens 8 --temperature 0 --ignore-eos 'Once upon a time'");
  EXPECT_EQ(once.exit_code, 0);
  EXPECT_FALSE(once.out.empty());

  const CliResult created = Cli(port, "sessions create --id e2e-chat --system 'You are terse.'");
  ASSERT_EQ(created.exit_code, 0);
  EXPECT_EQ(created.out, "e2e-chat\n");
  EXPECT_EQ(Cli(port, "generate --session e2e-chat --max-tokens 4 --temperature 0 ' Hello'").exit_code, 0);
  const CliResult got = Cli(port, "sessions get e2e-chat");
  ASSERT_EQ(got.exit_code, 0);
  EXPECT_NE(got.out.find("e2e-chat\tlength="), std::string::npos) << got.out;

  // A piped chat: two turns on one session.
  const CliResult chat = Cli(port, "chat --session e2e-chat --max-tokens 3 --temperature 0", "printf 'one\\ntwo\\n' |");
  EXPECT_EQ(chat.exit_code, 0);

  EXPECT_EQ(Cli(port, "sessions get no-such-session").exit_code, 4);
  EXPECT_EQ(Cli(port, "generate --max-tokens 0 Hello").exit_code, 8);
  EXPECT_EQ(Cli(port, "sessions delete e2e-chat --expected-length 1").exit_code, 6);
  EXPECT_EQ(Cli(port, "sessions delete e2e-chat").exit_code, 0);
  EXPECT_EQ(Cli(port, "--token secret info").exit_code, 2);
}

TEST(CliEndToEndTest, BearerTokenFromTheEnvironment) {
  const std::string path = ::testing::TempDir() + "/supra_e2e_tokens_" + std::to_string(getpid()) + ".txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("e2e-token-0123456789 team-a\n", f);
  std::fclose(f);
  ServerProcess server({"--token_file=" + path});
  ASSERT_GT(server.port(), 0) << server.log();
  EXPECT_EQ(Cli(server.port(), "info").exit_code, 7);
  EXPECT_EQ(Cli(server.port(), "info", "SUPRA_TOKEN=e2e-token-0123456789").exit_code, 0);
}

}  // namespace
}  // namespace supra::server::testing

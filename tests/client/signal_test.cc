// The real supra-cli process and a real SIGINT: main.cc's handler and watcher
// thread cancel the stream in flight and the process exits with 130.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "client/cli.h"
#include "gtest/gtest.h"
#include "tests/client/fake_server.h"

extern char** environ;

namespace supra::client {
namespace {

// Starts `args` with stdin, stdout and stderr on /dev/null; returns the pid.
pid_t Spawn(const std::vector<std::string>& args) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (const int fd : {0, 1, 2}) posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return error == 0 ? pid : -1;
}

TEST(SignalTest, SigintWhileStreamingExits130) {
  test::FakeServer server;
  ASSERT_FALSE(server.target().empty());
  std::atomic<pid_t> pid{-1};
  // The process installs its handler before it makes any call, so once the
  // fake has streamed a chunk the signal reaches the handler. (The pid is
  // published when posix_spawn returns, long before the child can call.)
  server.state().after_first_chunk = [&pid] {
    while (pid.load() <= 0) std::this_thread::yield();
    kill(pid.load(), SIGINT);
  };
  pid.store(Spawn({SUPRA_CLI_BINARY, "--target", server.target(), "--timeout", "60", "generate", "Hi"}));
  ASSERT_GT(pid.load(), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid.load(), &status, 0), pid.load());
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), kExitInterrupted);
  EXPECT_EQ(server.state().calls(), 1);
}

}  // namespace
}  // namespace supra::client

// supra-cli: the process around RunCli. Ctrl-C: the SIGINT handler only
// writes a byte to a pipe (async-signal-safe); a watcher thread reads it and
// cancels the call in flight through the Interrupter. A second Ctrl-C exits
// at once with 130.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "client/cli.h"
#include "client/interrupter.h"

namespace {

int g_interrupt_pipe[2] = {-1, -1};
std::atomic<int> g_interrupts{0};
supra::client::Interrupter* g_interrupter = nullptr;

extern "C" void OnSigint(int /*signal*/) {
  if (g_interrupts.fetch_add(1) >= 1) _exit(supra::client::kExitInterrupted);
  g_interrupter->MarkInterrupted();
  const char byte = 1;
  // Nothing useful to do if the write fails inside a signal handler.
  [[maybe_unused]] const ssize_t written = write(g_interrupt_pipe[1], &byte, 1);
}

void InstallInterruptHandler(supra::client::Interrupter* interrupter) {
  if (pipe2(g_interrupt_pipe, O_CLOEXEC) != 0) return;  // no Ctrl-C cancellation: the default handler stays
  g_interrupter = interrupter;
  std::thread([interrupter] {
    char byte = 0;
    while (true) {
      const ssize_t n = read(g_interrupt_pipe[0], &byte, 1);
      if (n == 1) {
        interrupter->Interrupt();
        return;
      }
      if (n == 0) return;
    }
  }).detach();
  struct sigaction action = {};
  action.sa_handler = OnSigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocking read of stdin (chat) returns on Ctrl-C
  sigaction(SIGINT, &action, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  static supra::client::Interrupter interrupter;
  InstallInterruptHandler(&interrupter);

  supra::client::Environment env;
  for (const char* name : {"SUPRA_TARGET", "SUPRA_TOKEN"}) {
    if (const char* value = std::getenv(name)) env.variables[name] = value;
  }
  env.interrupter = &interrupter;
  env.stdin_is_terminal = isatty(STDIN_FILENO) == 1;

  std::vector<std::string> args(argv + 1, argv + argc);
  const int code = supra::client::RunCli(args, std::cin, std::cout, std::cerr, env);
  std::cout.flush();
  // Leave without destructors: the watcher thread may still block on the pipe.
  std::_Exit(code);
}

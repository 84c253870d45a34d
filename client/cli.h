// supra-cli as a library: the whole command line tool runs in RunCli, so that
// tests drive it in-process against a fake server and main.cc stays a thin
// wrapper (signals, real streams, the process environment).
#ifndef SUPRA_CLIENT_CLI_H_
#define SUPRA_CLIENT_CLI_H_

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "client/interrupter.h"

namespace supra::client {

// Exit codes of supra-cli. Scripts rely on them: documented in `supra-cli
// --help` and client/README.md; never renumber one.
enum ExitCode : int {
  kExitOk = 0,
  kExitRpcFailed = 1,        // an RPC failed with a status not listed below
  kExitUsage = 2,            // bad flags or arguments; the server was not contacted
  kExitUnavailable = 3,      // unreachable, UNAVAILABLE (draining) or DEADLINE_EXCEEDED
  kExitNotFound = 4,         // NOT_FOUND
  kExitBusy = 5,             // ABORTED or RESOURCE_EXHAUSTED: retry later
  kExitPrecondition = 6,     // FAILED_PRECONDITION: expected length mismatch
  kExitAuth = 7,             // UNAUTHENTICATED or PERMISSION_DENIED
  kExitInvalidArgument = 8,  // INVALID_ARGUMENT
  kExitInterrupted = 130,    // Ctrl-C
};

// What RunCli takes from the process besides its arguments and streams.
struct Environment {
  // Environment variables the tool reads: SUPRA_TARGET, SUPRA_TOKEN.
  std::map<std::string, std::string> variables;
  // Cancels the RPC in flight when interrupted (main.cc's SIGINT watcher,
  // or a test). Null: nothing interrupts.
  Interrupter* interrupter = nullptr;
  // True when stdin is a terminal: chat then prints a prompt to stderr.
  bool stdin_is_terminal = false;
};

// Runs supra-cli with `args` (without the program name) and returns its exit
// code. Reads prompts from `in`, writes results to `out` and diagnostics to
// `err`.
int RunCli(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err,
           const Environment& env);

}  // namespace supra::client

#endif  // SUPRA_CLIENT_CLI_H_

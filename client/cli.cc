#include "client/cli.h"

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "client/flags.h"
#include "client/generate_command.h"
#include "client/invocation.h"
#include "client/model_commands.h"
#include "client/session_commands.h"
#include "client/snapshot_commands.h"

namespace supra::client {
namespace {

struct CommandInfo {
  const char* name;       // "generate", "sessions create"
  const char* arguments;  // after the flags in the usage line
  const char* summary;
  const std::vector<FlagSpec>& (*flags)();
  int (*run)(Invocation&, const ParsedFlags&);
};

const std::vector<CommandInfo>& Commands() {
  static const std::vector<CommandInfo> commands = {
      {"generate", "[--tokens IDS | PROMPT... | -]",
       "Run one turn, streaming the reply to stdout.\n"
       "The summary (finish reason, usage, session, seed) goes to stderr. The prompt is\n"
       "the arguments joined by spaces, or stdin (one trailing newline dropped) when\n"
       "there are none or the only one is '-'.",
       &GenerateFlagSpecs, &RunGenerate},
      {"chat", "",
       "Chat on one session, one turn per line of stdin, until EOF.\n"
       "Without --session the first turn creates a session (its id goes to stderr);\n"
       "every later turn passes the previous session length as expected_session_length.",
       &ChatFlagSpecs, &RunChat},
      {"sessions create", "", "Create a session; prints its id on stdout.", &SessionsCreateFlagSpecs,
       &RunSessionsCreate},
      {"sessions list", "", "List your sessions, one per line.", &SessionsListFlagSpecs, &RunSessionsList},
      {"sessions get", "ID", "Describe one session.", &SessionsGetFlagSpecs, &RunSessionsGet},
      {"sessions fork", "ID", "Copy a session; prints the new id on stdout.", &SessionsForkFlagSpecs, &RunSessionsFork},
      {"sessions delete", "ID", "Delete a session.", &SessionsDeleteFlagSpecs, &RunSessionsDelete},
      {"sessions export", "ID FILE", "Save a session's snapshot to FILE ('-': stdout).", &SessionsExportFlagSpecs,
       &RunSessionsExport},
      {"sessions import", "FILE", "Create a session from a snapshot FILE ('-': stdin); prints its id.",
       &SessionsImportFlagSpecs, &RunSessionsImport},
      {"tokenize", "[TEXT... | -]", "Print the token ids of TEXT (comma-separated).", &TokenizeFlagSpecs, &RunTokenize},
      {"detokenize", "IDS...", "Print the text of token ids, e.g. 1,415,302.", &DetokenizeFlagSpecs, &RunDetokenize},
      {"info", "", "Print the model and the server's limits.", &InfoFlagSpecs, &RunInfo},
      {"health", "",
       "Check the server's health (grpc.health.v1).\n"
       "Prints SERVING, NOT_SERVING, SERVICE_UNKNOWN or UNKNOWN; exits 0 when SERVING,\n"
       "1 otherwise (3 when unreachable).",
       &HealthFlagSpecs, &RunHealth},
  };
  return commands;
}

const char kExitCodesHelp[] =
    "Exit codes:\n"
    "  0    success\n"
    "  1    an RPC failed with a status not listed below (health: not SERVING)\n"
    "  2    usage error: bad flags or arguments; the server was not contacted\n"
    "  3    server unreachable, UNAVAILABLE (e.g. draining) or DEADLINE_EXCEEDED\n"
    "  4    NOT_FOUND (unknown session)\n"
    "  5    ABORTED or RESOURCE_EXHAUSTED: busy or overloaded, retry later\n"
    "  6    FAILED_PRECONDITION: expected length mismatch\n"
    "  7    UNAUTHENTICATED or PERMISSION_DENIED\n"
    "  8    INVALID_ARGUMENT\n"
    "  130  interrupted (Ctrl-C cancels the call; a second Ctrl-C exits at once)\n";

std::string ToolHelp() {
  std::string text =
      "supra-cli: command-line client of a supra-server (gRPC API supra.v1).\n\n"
      "Usage: supra-cli [GLOBAL FLAGS] COMMAND [FLAGS] [ARGS]\n\nCommands:\n";
  for (const CommandInfo& command : Commands()) {
    std::string left = std::string("  ") + command.name;
    left.resize(20, ' ');
    const std::string summary = command.summary;
    text += left + summary.substr(0, summary.find('\n')) + "\n";
  }
  text += "\nGlobal flags (before or after the command):\n" + FormatFlagHelp(GlobalFlagSpecs());
  text +=
      "\nEnvironment: SUPRA_TARGET (default of --target), SUPRA_TOKEN (bearer token when\n"
      "no --token-file). A token is never accepted on the command line.\n"
      "--json prints results as JSON: streamed responses one object per line (the proto3\n"
      "JSON mapping of the response messages), errors as one object on stderr.\n"
      "'supra-cli COMMAND --help' describes a command.\n\n";
  text += kExitCodesHelp;
  return text;
}

std::string CommandHelp(const CommandInfo& command) {
  std::string text = std::string("Usage: supra-cli [GLOBAL FLAGS] ") + command.name + " [FLAGS]";
  if (command.arguments[0] != '\0') text += std::string(" ") + command.arguments;
  text += "\n\n" + std::string(command.summary) + "\n\nFlags:\n" + FormatFlagHelp(command.flags());
  text += "\nGlobal flags:\n" + FormatFlagHelp(GlobalFlagSpecs()) + "\n" + kExitCodesHelp;
  return text;
}

const CommandInfo* FindCommand(const std::string& name) {
  for (const CommandInfo& command : Commands()) {
    if (name == command.name) return &command;
  }
  return nullptr;
}

int Usage(std::ostream& err, const std::string& message) {
  err << "supra-cli: " << message << "\nRun 'supra-cli --help' for usage.\n";
  return kExitUsage;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err,
           const Environment& env) {
  const std::vector<FlagSpec>& global_specs = GlobalFlagSpecs();
  ParsedFlags flags;
  size_t index = 0;
  if (auto error = ParseFlags({&global_specs}, args, 0, /*stop_at_positional=*/true, &flags, &index)) {
    return Usage(err, *error);
  }
  if (index >= args.size()) {
    if (flags.Has("help")) {
      out << ToolHelp();
      return kExitOk;
    }
    err << ToolHelp();
    return kExitUsage;
  }

  std::string name = args[index++];
  if (name == "help") {
    // `supra-cli help [COMMAND...]`
    std::string topic;
    for (; index < args.size(); ++index) topic += (topic.empty() ? "" : " ") + args[index];
    if (topic.empty()) {
      out << ToolHelp();
      return kExitOk;
    }
    const CommandInfo* command = FindCommand(topic);
    if (command == nullptr) return Usage(err, "no such command: '" + topic + "'");
    out << CommandHelp(*command);
    return kExitOk;
  }
  if (name == "sessions") {
    // Global flags may sit between "sessions" and its subcommand too.
    if (auto error = ParseFlags({&global_specs}, args, index, /*stop_at_positional=*/true, &flags, &index)) {
      return Usage(err, *error);
    }
    if (index >= args.size()) {
      const bool help = flags.Has("help");
      std::ostream& stream = help ? out : err;
      stream << "Usage: supra-cli [GLOBAL FLAGS] sessions create|list|get|fork|delete|export|import ...\n";
      for (const CommandInfo& command : Commands()) {
        if (std::string(command.name).rfind("sessions ", 0) == 0) {
          std::string left = std::string("  ") + command.name + " " + command.arguments;
          left.resize(27, ' ');
          stream << left << command.summary << "\n";
        }
      }
      return help ? kExitOk : kExitUsage;
    }
    name += " " + args[index++];
  }
  const CommandInfo* command = FindCommand(name);
  if (command == nullptr) return Usage(err, "unknown command '" + name + "'");

  const std::vector<FlagSpec>& command_specs = command->flags();
  if (auto error =
          ParseFlags({&command_specs, &global_specs}, args, index, /*stop_at_positional=*/false, &flags, nullptr)) {
    return Usage(err, std::string(command->name) + ": " + *error);
  }
  if (flags.Has("help")) {
    out << CommandHelp(*command);
    return kExitOk;
  }
  GlobalOptions options;
  if (auto error = LoadGlobalOptions(flags, env, &options)) return Usage(err, *error);
  Invocation invocation(std::move(options), in, out, err, env);
  return command->run(invocation, flags);
}

}  // namespace supra::client

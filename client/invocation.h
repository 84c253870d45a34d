// What every subcommand works with: the global options (target, TLS, auth,
// deadline, output format), the streams, the channel, and the one place that
// turns a failed RPC into a message and an exit code.
#ifndef SUPRA_CLIENT_INVOCATION_H_
#define SUPRA_CLIENT_INVOCATION_H_

#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/cli.h"
#include "client/flags.h"
#include "grpcpp/grpcpp.h"

namespace supra::client {

// The flags every subcommand accepts, before or after its name.
const std::vector<FlagSpec>& GlobalFlagSpecs();

struct GlobalOptions {
  std::string target = "localhost:50051";  // --target, else SUPRA_TARGET
  bool json = false;                       // --json
  std::optional<double> timeout_s;         // --timeout: each call's deadline
  bool tls = false;                        // --tls, or implied by any TLS file flag
  std::string ca_cert_pem;                 // --ca-cert contents; empty: system roots
  std::string client_cert_pem;             // --client-cert contents (mTLS)
  std::string client_key_pem;              // --client-key contents (mTLS)
  std::string tls_server_name;             // --tls-server-name
  std::string token;                       // --token-file contents, else SUPRA_TOKEN; empty: none
};

// Fills `options` from the parsed global flags and the environment; reads the
// files the flags name. Returns a usage error message on failure.
std::optional<std::string> LoadGlobalOptions(const ParsedFlags& flags, const Environment& env, GlobalOptions* options);

class Invocation {
 public:
  Invocation(GlobalOptions options, std::istream& in, std::ostream& out, std::ostream& err, const Environment& env)
      : options_(std::move(options)), in_(in), out_(out), err_(err), env_(env) {}

  const GlobalOptions& options() const { return options_; }
  bool json() const { return options_.json; }
  std::istream& in() { return in_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  const Environment& env() const { return env_; }
  Interrupter* interrupter() const { return env_.interrupter; }
  bool interrupted() const { return env_.interrupter != nullptr && env_.interrupter->interrupted(); }

  // The channel to --target, made on first use.
  std::shared_ptr<grpc::Channel> channel();

  // Sets the deadline (--timeout) and the bearer token on a call's context.
  void PrepareContext(grpc::ClientContext* context) const;

  // Reports a failed call on stderr (text, or one JSON object with --json):
  // code name, message and the supra.v1.ErrorInfo detail when present.
  // Returns the exit code for the status (kExitInterrupted if the user
  // interrupted the call).
  int ReportRpcError(const grpc::Status& status);

  // Prints a usage error and returns kExitUsage.
  int UsageError(const std::string& message);

 private:
  GlobalOptions options_;
  std::istream& in_;
  std::ostream& out_;
  std::ostream& err_;
  const Environment& env_;
  std::shared_ptr<grpc::Channel> channel_;
};

// The documented exit code of a call that ended with `code`.
int ExitCodeForStatus(grpc::StatusCode code);
// "NOT_FOUND", "UNAVAILABLE", ...
std::string StatusCodeName(grpc::StatusCode code);

// Reads a whole file; null when it cannot be read.
std::optional<std::string> ReadFileContents(const std::string& path);

// A command's text argument: its positional arguments joined by spaces, or
// all of stdin when there are none or the only one is "-" (one trailing
// line ending, "\n" or "\r\n", dropped).
std::string TextFromArgumentsOrStdin(Invocation& invocation, const std::vector<std::string>& positional);

}  // namespace supra::client

#endif  // SUPRA_CLIENT_INVOCATION_H_

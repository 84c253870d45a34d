#include "client/invocation.h"

#include <chrono>
#include <fstream>
#include <iterator>
#include <ostream>
#include <sstream>

#include "client/proto_json.h"
#include "nlohmann/json.hpp"
#include "supra/v1/errors.pb.h"

namespace supra::client {
namespace {

std::string TrimWhitespace(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const size_t last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// Reads the file a flag names into *contents, or returns the usage error.
std::optional<std::string> ReadFlagFile(const ParsedFlags& flags, const std::string& name, std::string* contents) {
  const std::string* path = flags.Get(name);
  if (path == nullptr) return std::nullopt;
  std::optional<std::string> data = ReadFileContents(*path);
  if (!data.has_value()) return "--" + name + ": cannot read '" + *path + "'";
  *contents = std::move(*data);
  return std::nullopt;
}

}  // namespace

const std::vector<FlagSpec>& GlobalFlagSpecs() {
  static const std::vector<FlagSpec> specs = {
      {"target", "HOST:PORT", "server address (default localhost:50051, or $SUPRA_TARGET)"},
      {"json", "", "machine-readable output: one JSON object per line"},
      {"timeout", "SECONDS", "deadline of each call (a chat turn is one call); default none"},
      {"tls", "", "connect with TLS (system roots unless --ca-cert)"},
      {"ca-cert", "FILE", "PEM roots to verify the server with (implies --tls)"},
      {"client-cert", "FILE", "PEM client certificate for mTLS (implies --tls; needs --client-key)"},
      {"client-key", "FILE", "PEM private key of --client-cert"},
      {"tls-server-name", "NAME", "name to verify in the server's certificate (implies --tls)"},
      {"token-file", "FILE", "bearer token file (else $SUPRA_TOKEN); sent as authorization: Bearer"},
      {"help", "", "show help"},
  };
  return specs;
}

std::optional<std::string> LoadGlobalOptions(const ParsedFlags& flags, const Environment& env, GlobalOptions* options) {
  if (const std::string* target = flags.Get("target")) {
    options->target = *target;
  } else if (auto it = env.variables.find("SUPRA_TARGET"); it != env.variables.end() && !it->second.empty()) {
    options->target = it->second;
  }
  if (options->target.empty()) return "--target is empty";
  options->json = flags.Has("json");
  if (const std::string* timeout = flags.Get("timeout")) {
    const std::optional<double> seconds = ParseDouble(*timeout);
    if (!seconds.has_value() || *seconds <= 0 || *seconds > 1e8) {
      return "--timeout wants a positive number of seconds, got '" + *timeout + "'";
    }
    options->timeout_s = *seconds;
  }
  options->tls = flags.Has("tls") || flags.Has("ca-cert") || flags.Has("client-cert") || flags.Has("client-key") ||
                 flags.Has("tls-server-name");
  if (flags.Has("client-cert") != flags.Has("client-key")) {
    return "--client-cert and --client-key go together (mTLS)";
  }
  if (auto error = ReadFlagFile(flags, "ca-cert", &options->ca_cert_pem)) return error;
  if (auto error = ReadFlagFile(flags, "client-cert", &options->client_cert_pem)) return error;
  if (auto error = ReadFlagFile(flags, "client-key", &options->client_key_pem)) return error;
  if (const std::string* name = flags.Get("tls-server-name")) options->tls_server_name = *name;

  std::string token;
  std::string source;
  if (flags.Has("token-file")) {
    if (auto error = ReadFlagFile(flags, "token-file", &token)) return error;
    source = "--token-file";
  } else if (auto it = env.variables.find("SUPRA_TOKEN"); it != env.variables.end()) {
    token = it->second;
    source = "SUPRA_TOKEN";
  }
  token = TrimWhitespace(token);
  if (!source.empty()) {
    if (token.empty()) return source + " holds no token";
    for (const char c : token) {
      // Metadata values are printable ASCII; anything else would be refused
      // by gRPC after the channel is up, with a less helpful message.
      if (c < 0x20 || c > 0x7e) return source + ": the token must be one line of printable ASCII";
    }
  }
  options->token = std::move(token);
  return std::nullopt;
}

std::shared_ptr<grpc::Channel> Invocation::channel() {
  if (channel_ != nullptr) return channel_;
  grpc::ChannelArguments arguments;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options_.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options_.ca_cert_pem;
    ssl.pem_cert_chain = options_.client_cert_pem;
    ssl.pem_private_key = options_.client_key_pem;
    credentials = grpc::SslCredentials(ssl);
    if (!options_.tls_server_name.empty()) arguments.SetSslTargetNameOverride(options_.tls_server_name);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  channel_ = grpc::CreateCustomChannel(options_.target, credentials, arguments);
  return channel_;
}

void Invocation::PrepareContext(grpc::ClientContext* context) const {
  if (options_.timeout_s.has_value()) {
    const auto timeout =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::duration<double>(*options_.timeout_s));
    context->set_deadline(std::chrono::system_clock::now() + timeout);
  }
  if (!options_.token.empty()) context->AddMetadata("authorization", "Bearer " + options_.token);
}

int Invocation::ReportRpcError(const grpc::Status& status) {
  const bool interrupted_call = interrupted();
  const int exit_code = interrupted_call ? kExitInterrupted : ExitCodeForStatus(status.error_code());
  const std::string message = interrupted_call ? "interrupted" : status.error_message();

  std::optional<supra::v1::ErrorInfo> info;
  supra::v1::RpcStatus details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const google::protobuf::Any& any : details.details()) {
      supra::v1::ErrorInfo candidate;
      if (any.Is<supra::v1::ErrorInfo>() && any.UnpackTo(&candidate)) {
        info = std::move(candidate);
        break;
      }
    }
  }
  std::optional<double> retry_after_s;
  if (info.has_value() && info->has_retry_after()) {
    retry_after_s = static_cast<double>(info->retry_after().seconds()) + info->retry_after().nanos() * 1e-9;
  }

  if (json()) {
    nlohmann::json error = {{"code", StatusCodeName(status.error_code())},
                            {"code_number", static_cast<int>(status.error_code())},
                            {"message", message}};
    if (info.has_value()) {
      error["reason"] = info->reason();
      error["field"] = info->field();
      nlohmann::json metadata = nlohmann::json::object();
      for (const auto& [key, value] : info->metadata()) metadata[key] = value;
      error["metadata"] = metadata;
      if (retry_after_s.has_value()) error["retry_after_seconds"] = *retry_after_s;
    }
    err_ << ToJsonLine(nlohmann::json{{"error", error}, {"exit_code", exit_code}}) << "\n";
  } else {
    err_ << "supra-cli: " << StatusCodeName(status.error_code()) << ": " << message << "\n";
    if (info.has_value()) {
      if (!info->reason().empty()) err_ << "  reason: " << info->reason() << "\n";
      if (!info->field().empty()) err_ << "  field: " << info->field() << "\n";
      if (!info->metadata().empty()) {
        // Sorted, so the output does not depend on the map's order.
        std::map<std::string, std::string> sorted(info->metadata().begin(), info->metadata().end());
        err_ << "  metadata:";
        for (const auto& [key, value] : sorted) err_ << " " << key << "=" << value;
        err_ << "\n";
      }
      if (retry_after_s.has_value()) err_ << "  retry after: " << *retry_after_s << " s\n";
    }
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && !interrupted_call) {
      err_ << "  (target " << options_.target << ")\n";
    }
  }
  err_.flush();
  return exit_code;
}

int Invocation::UsageError(const std::string& message) {
  err_ << "supra-cli: " << message << "\n";
  return kExitUsage;
}

int ExitCodeForStatus(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return kExitBusy;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return kExitPrecondition;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kExitAuth;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return kExitInvalidArgument;
    default:
      return kExitRpcFailed;
  }
}

std::string StatusCodeName(grpc::StatusCode code) {
  // Indexed by the code's number (grpc/impl/codegen/status.h, 0 to 16).
  static constexpr const char* kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  const int number = static_cast<int>(code);
  if (number >= 0 && number < static_cast<int>(std::size(kNames))) return kNames[number];
  return "CODE_" + std::to_string(number);
}

std::optional<std::string> ReadFileContents(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  std::ostringstream data;
  data << file.rdbuf();
  if (file.bad()) return std::nullopt;
  return data.str();
}

std::string TextFromArgumentsOrStdin(Invocation& invocation, const std::vector<std::string>& positional) {
  if (positional.empty() || (positional.size() == 1 && positional[0] == "-")) {
    std::string text((std::istreambuf_iterator<char>(invocation.in())), std::istreambuf_iterator<char>());
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (!text.empty() && text.back() == '\r') text.pop_back();
    return text;
  }
  std::string text;
  for (const std::string& word : positional) {
    if (!text.empty()) text += " ";
    text += word;
  }
  return text;
}

}  // namespace supra::client

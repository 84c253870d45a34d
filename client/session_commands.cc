#include "client/session_commands.h"

#include <memory>
#include <ostream>
#include <string>

#include "client/interrupter.h"
#include "client/proto_json.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"
#include "supra/v1/sessions.grpc.pb.h"

namespace supra::client {
namespace {

using supra::v1::Session;
using supra::v1::SessionService;

const FlagSpec kHelpFlag = {"help", "", "show help"};

std::string TierName(supra::v1::SessionTier tier) {
  std::string name = supra::v1::SessionTier_Name(tier);
  const std::string prefix = "SESSION_TIER_";
  if (name.rfind(prefix, 0) == 0) name.erase(0, prefix.size());
  return name.empty() ? std::to_string(static_cast<int>(tier)) : name;
}

std::string TimeText(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return "-";
  return google::protobuf::util::TimeUtil::ToString(time);
}

// One tab-separated line per session: the id first, then key=value fields.
void PrintSessionLine(const Session& session, std::ostream& out) {
  out << session.session_id() << "\tlength=" << session.length() << "\ttier=" << TierName(session.tier())
      << "\tstate_bytes=" << session.state_bytes() << "\tbusy=" << (session.busy() ? "true" : "false")
      << "\tcreated=" << TimeText(session.create_time()) << "\tlast_used=" << TimeText(session.last_use_time()) << "\n";
}

// Runs a unary SessionService call with the invocation's deadline, token and
// cancellation.
template <typename Request, typename Response>
grpc::Status Call(Invocation& invocation,
                  grpc::Status (SessionService::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                  const Request& request, Response* response) {
  std::unique_ptr<SessionService::Stub> stub = SessionService::NewStub(invocation.channel());
  grpc::ClientContext context;
  invocation.PrepareContext(&context);
  ScopedCancellation cancellation(invocation.interrupter(), &context);
  return ((*stub).*method)(&context, request, response);
}

// The single positional ID of get/fork/delete, or a usage error.
std::optional<std::string> TakeSessionId(const ParsedFlags& flags, const char* command, std::string* id) {
  if (flags.positional().size() != 1 || flags.positional()[0].empty()) {
    return std::string("sessions ") + command + " takes exactly one session ID";
  }
  *id = flags.positional()[0];
  return std::nullopt;
}

std::optional<std::string> ParseExpectedLength(const ParsedFlags& flags, std::optional<int64_t>* length) {
  if (const std::string* text = flags.Get("expected-length")) {
    *length = ParseInt64(*text);
    if (!length->has_value()) return "--expected-length wants an integer, got '" + *text + "'";
  }
  return std::nullopt;
}

// create and fork print the new id alone on stdout (for scripts:
// ID=$(supra-cli sessions create)), and the whole session on stderr.
template <typename Response>
int PrintNewSession(Invocation& invocation, const Response& response) {
  if (invocation.json()) {
    invocation.out() << ToJsonLine(response) << "\n";
  } else {
    invocation.out() << response.session().session_id() << "\n";
    PrintSessionLine(response.session(), invocation.err());
  }
  return kExitOk;
}

}  // namespace

const std::vector<FlagSpec>& SessionsCreateFlagSpecs() {
  static const std::vector<FlagSpec> specs = {
      {"id", "ID", "the new session's id (default: the server makes one)"},
      {"system", "TEXT", "system prompt, fed to the model at creation"},
      kHelpFlag,
  };
  return specs;
}

const std::vector<FlagSpec>& SessionsListFlagSpecs() {
  static const std::vector<FlagSpec> specs = {
      {"page-size", "N", "sessions per page (default: the server's)"},
      {"page-token", "T", "continue from this page token"},
      {"all", "", "follow next_page_token to the last page"},
      kHelpFlag,
  };
  return specs;
}

const std::vector<FlagSpec>& SessionsGetFlagSpecs() {
  static const std::vector<FlagSpec> specs = {kHelpFlag};
  return specs;
}

const std::vector<FlagSpec>& SessionsForkFlagSpecs() {
  static const std::vector<FlagSpec> specs = {
      {"new-id", "ID", "the copy's id (default: the server makes one)"},
      {"expected-length", "N", "fail (FAILED_PRECONDITION) unless the source has N tokens"},
      kHelpFlag,
  };
  return specs;
}

const std::vector<FlagSpec>& SessionsDeleteFlagSpecs() {
  static const std::vector<FlagSpec> specs = {
      {"expected-length", "N", "fail (FAILED_PRECONDITION) unless the session has N tokens"},
      kHelpFlag,
  };
  return specs;
}

int RunSessionsCreate(Invocation& invocation, const ParsedFlags& flags) {
  if (!flags.positional().empty()) return invocation.UsageError("sessions create takes no arguments (see --id)");
  supra::v1::CreateSessionRequest request;
  if (const std::string* id = flags.Get("id")) request.set_session_id(*id);
  if (const std::string* system = flags.Get("system")) {
    if (system->empty()) return invocation.UsageError("--system wants a non-empty prompt");
    request.set_text(*system);
  }
  supra::v1::CreateSessionResponse response;
  const grpc::Status status = Call(invocation, &SessionService::Stub::CreateSession, request, &response);
  if (!status.ok()) return invocation.ReportRpcError(status);
  return PrintNewSession(invocation, response);
}

int RunSessionsList(Invocation& invocation, const ParsedFlags& flags) {
  if (!flags.positional().empty()) return invocation.UsageError("sessions list takes no arguments");
  supra::v1::ListSessionsRequest request;
  if (const std::string* text = flags.Get("page-size")) {
    const std::optional<int32_t> size = ParseInt32(*text);
    if (!size.has_value() || *size < 0) {
      return invocation.UsageError("--page-size wants a non-negative integer, got '" + *text + "'");
    }
    request.set_page_size(*size);
  }
  if (const std::string* token = flags.Get("page-token")) request.set_page_token(*token);
  const bool all = flags.Has("all");

  supra::v1::ListSessionsResponse merged;
  while (true) {
    supra::v1::ListSessionsResponse page;
    const grpc::Status status = Call(invocation, &SessionService::Stub::ListSessions, request, &page);
    if (!status.ok()) return invocation.ReportRpcError(status);
    if (!invocation.json()) {
      for (const Session& session : page.sessions()) PrintSessionLine(session, invocation.out());
      invocation.out().flush();
    }
    merged.mutable_sessions()->MergeFrom(page.sessions());
    merged.set_next_page_token(page.next_page_token());
    if (!all || page.next_page_token().empty()) break;
    if (page.next_page_token() == request.page_token()) {
      return invocation.ReportRpcError(
          grpc::Status(grpc::StatusCode::INTERNAL, "the server returned the same page token twice"));
    }
    request.set_page_token(page.next_page_token());
  }
  if (invocation.json()) {
    invocation.out() << ToJsonLine(merged) << "\n";
  } else if (!merged.next_page_token().empty()) {
    invocation.err() << "more sessions: --page-token " << merged.next_page_token() << " (or --all)\n";
  }
  return kExitOk;
}

int RunSessionsGet(Invocation& invocation, const ParsedFlags& flags) {
  supra::v1::GetSessionRequest request;
  std::string id;
  if (auto error = TakeSessionId(flags, "get", &id)) return invocation.UsageError(*error);
  request.set_session_id(id);
  supra::v1::GetSessionResponse response;
  const grpc::Status status = Call(invocation, &SessionService::Stub::GetSession, request, &response);
  if (!status.ok()) return invocation.ReportRpcError(status);
  if (invocation.json()) {
    invocation.out() << ToJsonLine(response) << "\n";
  } else {
    PrintSessionLine(response.session(), invocation.out());
  }
  return kExitOk;
}

int RunSessionsFork(Invocation& invocation, const ParsedFlags& flags) {
  supra::v1::ForkSessionRequest request;
  std::string id;
  if (auto error = TakeSessionId(flags, "fork", &id)) return invocation.UsageError(*error);
  request.set_source_session_id(id);
  std::optional<int64_t> expected;
  if (auto error = ParseExpectedLength(flags, &expected)) return invocation.UsageError(*error);
  if (expected.has_value()) request.set_expected_length(*expected);
  if (const std::string* new_id = flags.Get("new-id")) request.set_new_session_id(*new_id);
  supra::v1::ForkSessionResponse response;
  const grpc::Status status = Call(invocation, &SessionService::Stub::ForkSession, request, &response);
  if (!status.ok()) return invocation.ReportRpcError(status);
  return PrintNewSession(invocation, response);
}

int RunSessionsDelete(Invocation& invocation, const ParsedFlags& flags) {
  supra::v1::DeleteSessionRequest request;
  std::string id;
  if (auto error = TakeSessionId(flags, "delete", &id)) return invocation.UsageError(*error);
  request.set_session_id(id);
  std::optional<int64_t> expected;
  if (auto error = ParseExpectedLength(flags, &expected)) return invocation.UsageError(*error);
  if (expected.has_value()) request.set_expected_length(*expected);
  supra::v1::DeleteSessionResponse response;
  const grpc::Status status = Call(invocation, &SessionService::Stub::DeleteSession, request, &response);
  if (!status.ok()) return invocation.ReportRpcError(status);
  if (invocation.json()) {
    invocation.out() << ToJsonLine(nlohmann::json{{"session_id", id}, {"deleted", true}}) << "\n";
  } else {
    invocation.err() << "deleted " << id << "\n";
  }
  return kExitOk;
}

}  // namespace supra::client

#include "client/snapshot_commands.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>

#include "client/interrupter.h"
#include "client/proto_json.h"
#include "supra/v1/sessions.grpc.pb.h"

namespace supra::client {
namespace {

using supra::v1::SessionService;

// The size of each ImportSessionRequest.data piece: ExportSession sends at
// most 1 MiB per message, and the same keeps every message far below the
// usual 4 MiB message limit.
constexpr size_t kPieceBytes = size_t{1} << 20;

}  // namespace

const std::vector<FlagSpec>& SessionsExportFlagSpecs() {
  static const std::vector<FlagSpec> specs = {{"help", "", "show help"}};
  return specs;
}

const std::vector<FlagSpec>& SessionsImportFlagSpecs() {
  static const std::vector<FlagSpec> specs = {
      {"id", "ID", "the new session's id (default: the server makes one)"},
      {"help", "", "show help"},
  };
  return specs;
}

int RunSessionsExport(Invocation& invocation, const ParsedFlags& flags) {
  if (flags.positional().size() != 2 || flags.positional()[0].empty() || flags.positional()[1].empty()) {
    return invocation.UsageError("sessions export takes a session ID and a FILE ('-': stdout)");
  }
  const std::string& id = flags.positional()[0];
  const std::string& path = flags.positional()[1];
  const bool to_stdout = path == "-";
  if (to_stdout && invocation.json()) return invocation.UsageError("--json and a snapshot on stdout do not mix");
  // Written to a temporary name and renamed at the end, so FILE is never a
  // partial snapshot.
  const std::string temp_path = path + ".partial";
  std::ofstream file;
  if (!to_stdout) {
    file.open(temp_path, std::ios::binary | std::ios::trunc);
    if (!file) return invocation.UsageError("cannot write '" + temp_path + "'");
  }
  std::ostream& sink = to_stdout ? invocation.out() : file;

  std::unique_ptr<SessionService::Stub> stub = SessionService::NewStub(invocation.channel());
  grpc::ClientContext context;
  invocation.PrepareContext(&context);
  ScopedCancellation cancellation(invocation.interrupter(), &context);
  supra::v1::ExportSessionRequest request;
  request.set_session_id(id);
  std::unique_ptr<grpc::ClientReader<supra::v1::ExportSessionResponse>> reader = stub->ExportSession(&context, request);
  supra::v1::ExportSessionResponse response;
  supra::v1::Session session;
  int64_t bytes = 0;
  bool first = true;
  while (reader->Read(&response)) {
    if (first) session = response.session();
    first = false;
    sink.write(response.data().data(), static_cast<std::streamsize>(response.data().size()));
    bytes += static_cast<int64_t>(response.data().size());
  }
  const grpc::Status status = reader->Finish();
  sink.flush();
  if (!to_stdout) file.close();
  if (!status.ok() || !sink) {
    if (!to_stdout) std::remove(temp_path.c_str());
    if (status.ok()) return invocation.UsageError("writing '" + temp_path + "' failed");
    return invocation.ReportRpcError(status);
  }
  if (!to_stdout && std::rename(temp_path.c_str(), path.c_str()) != 0) {
    std::remove(temp_path.c_str());
    return invocation.UsageError("cannot rename '" + temp_path + "' to '" + path + "'");
  }
  if (invocation.json()) {
    nlohmann::json line = nlohmann::json::parse(ToJsonLine(session));
    invocation.out() << ToJsonLine(nlohmann::json{{"session", line}, {"bytes", bytes}, {"file", path}}) << "\n";
  } else {
    invocation.err() << "exported " << id << " (" << bytes << " bytes, length " << session.length() << ")\n";
  }
  return kExitOk;
}

int RunSessionsImport(Invocation& invocation, const ParsedFlags& flags) {
  if (flags.positional().size() != 1 || flags.positional()[0].empty()) {
    return invocation.UsageError("sessions import takes one FILE ('-': stdin)");
  }
  const std::string& path = flags.positional()[0];
  std::ifstream file;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return invocation.UsageError("cannot read '" + path + "'");
  }
  std::istream& source = path == "-" ? invocation.in() : file;

  std::unique_ptr<SessionService::Stub> stub = SessionService::NewStub(invocation.channel());
  grpc::ClientContext context;
  invocation.PrepareContext(&context);
  ScopedCancellation cancellation(invocation.interrupter(), &context);
  supra::v1::ImportSessionResponse response;
  std::unique_ptr<grpc::ClientWriter<supra::v1::ImportSessionRequest>> writer =
      stub->ImportSession(&context, &response);
  supra::v1::ImportSessionRequest request;
  if (const std::string* id = flags.Get("id")) request.set_session_id(*id);
  std::string piece(kPieceBytes, '\0');
  bool first = true;
  while (true) {
    source.read(piece.data(), static_cast<std::streamsize>(piece.size()));
    const std::streamsize got = source.gcount();
    if (got <= 0 && !first) break;
    request.set_data(piece.data(), static_cast<size_t>(got));
    // Write fails once the server has ended the call; Finish says why.
    if (!writer->Write(request)) break;
    request.clear_session_id();  // the id goes in the first message only
    first = false;
    if (got < static_cast<std::streamsize>(piece.size())) break;
  }
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) return invocation.ReportRpcError(status);
  if (invocation.json()) {
    invocation.out() << ToJsonLine(response) << "\n";
  } else {
    invocation.out() << response.session().session_id() << "\n";
  }
  return kExitOk;
}

}  // namespace supra::client

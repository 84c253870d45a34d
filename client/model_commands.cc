#include "client/model_commands.h"

#include <condition_variable>
#include <iterator>
#include <memory>
#include <mutex>
#include <ostream>

#include "client/interrupter.h"
#include "client/proto_json.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"
#include "google/protobuf/wire_format_lite.h"
#include "grpcpp/generic/generic_stub.h"
#include "nlohmann/json.hpp"
#include "supra/v1/model.grpc.pb.h"

namespace supra::client {
namespace {

using supra::v1::ModelService;

const FlagSpec kHelpFlag = {"help", "", "show help"};

template <typename Request, typename Response>
grpc::Status Call(Invocation& invocation,
                  grpc::Status (ModelService::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                  const Request& request, Response* response) {
  std::unique_ptr<ModelService::Stub> stub = ModelService::NewStub(invocation.channel());
  grpc::ClientContext context;
  invocation.PrepareContext(&context);
  ScopedCancellation cancellation(invocation.interrupter(), &context);
  return ((*stub).*method)(&context, request, response);
}

const char* HealthStatusName(int status) {
  switch (status) {
    case 0:
      return "UNKNOWN";
    case 1:
      return "SERVING";
    case 2:
      return "NOT_SERVING";
    case 3:
      return "SERVICE_UNKNOWN";
    default:
      return "UNRECOGNIZED";
  }
}

}  // namespace

std::string EncodeHealthCheckRequest(const std::string& service) {
  std::string bytes;
  if (service.empty()) return bytes;  // proto3: a default string is not sent
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.WriteTag((1 << 3) | 2);  // field 1, length-delimited
  coded.WriteVarint32(static_cast<uint32_t>(service.size()));
  coded.WriteString(service);
  return bytes;
}

std::optional<int> DecodeHealthCheckResponse(const std::string& bytes) {
  google::protobuf::io::CodedInputStream coded(reinterpret_cast<const uint8_t*>(bytes.data()),
                                               static_cast<int>(bytes.size()));
  int status = 0;
  while (true) {
    const uint32_t tag = coded.ReadTag();
    if (tag == 0) return coded.ConsumedEntireMessage() ? std::optional<int>(status) : std::nullopt;
    if (tag == ((1 << 3) | 0)) {
      uint32_t value = 0;
      if (!coded.ReadVarint32(&value)) return std::nullopt;
      status = static_cast<int>(value);
    } else if (!google::protobuf::internal::WireFormatLite::SkipField(&coded, tag)) {
      return std::nullopt;
    }
  }
}

const std::vector<FlagSpec>& TokenizeFlagSpecs() {
  static const std::vector<FlagSpec> specs = {
      {"add-bos", "", "prepend BOS, as Generate does for text at position 0"},
      {"pieces", "", "print one 'id<TAB>piece' line per token instead of the id list"},
      kHelpFlag,
  };
  return specs;
}

const std::vector<FlagSpec>& DetokenizeFlagSpecs() {
  static const std::vector<FlagSpec> specs = {kHelpFlag};
  return specs;
}

const std::vector<FlagSpec>& InfoFlagSpecs() {
  static const std::vector<FlagSpec> specs = {kHelpFlag};
  return specs;
}

const std::vector<FlagSpec>& HealthFlagSpecs() {
  static const std::vector<FlagSpec> specs = {
      {"service", "NAME", "the service to check (default: the whole server)"},
      kHelpFlag,
  };
  return specs;
}

int RunTokenize(Invocation& invocation, const ParsedFlags& flags) {
  supra::v1::TokenizeRequest request;
  request.set_text(TextFromArgumentsOrStdin(invocation, flags.positional()));
  if (request.text().empty()) return invocation.UsageError("tokenize: the text is empty");
  request.set_add_bos(flags.Has("add-bos"));
  supra::v1::TokenizeResponse response;
  const grpc::Status status = Call(invocation, &ModelService::Stub::Tokenize, request, &response);
  if (!status.ok()) return invocation.ReportRpcError(status);
  std::ostream& out = invocation.out();
  if (invocation.json()) {
    out << ToJsonLine(response) << "\n";
  } else if (flags.Has("pieces")) {
    for (int i = 0; i < response.token_ids_size(); ++i) {
      out << response.token_ids(i) << "\t" << (i < response.pieces_size() ? response.pieces(i) : "") << "\n";
    }
  } else {
    // The format detokenize and generate --tokens read.
    for (int i = 0; i < response.token_ids_size(); ++i) out << (i == 0 ? "" : ",") << response.token_ids(i);
    out << "\n";
  }
  return kExitOk;
}

int RunDetokenize(Invocation& invocation, const ParsedFlags& flags) {
  if (flags.positional().empty()) return invocation.UsageError("detokenize wants token ids, e.g. 1,415,302");
  supra::v1::DetokenizeRequest request;
  for (const std::string& argument : flags.positional()) {
    const std::optional<std::vector<int32_t>> ids = ParseTokenList(argument);
    if (!ids.has_value()) return invocation.UsageError("detokenize: not a token id list: '" + argument + "'");
    for (const int32_t id : *ids) request.add_token_ids(id);
  }
  supra::v1::DetokenizeResponse response;
  const grpc::Status status = Call(invocation, &ModelService::Stub::Detokenize, request, &response);
  if (!status.ok()) return invocation.ReportRpcError(status);
  if (invocation.json()) {
    invocation.out() << ToJsonLine(response) << "\n";
  } else {
    invocation.out() << response.text() << "\n";
  }
  return kExitOk;
}

int RunInfo(Invocation& invocation, const ParsedFlags& flags) {
  if (!flags.positional().empty()) return invocation.UsageError("info takes no arguments");
  supra::v1::GetModelInfoResponse response;
  const grpc::Status status =
      Call(invocation, &ModelService::Stub::GetModelInfo, supra::v1::GetModelInfoRequest(), &response);
  if (!status.ok()) return invocation.ReportRpcError(status);
  std::ostream& out = invocation.out();
  if (invocation.json()) {
    out << ToJsonLine(response) << "\n";
    return kExitOk;
  }
  const supra::v1::Limits& limits = response.limits();
  out << "model_name: " << response.model_name() << "\n"
      << "model_fingerprint: " << response.model_fingerprint() << "\n"
      << "vocab_size: " << response.vocab_size() << "\n"
      << "bos_token_id: " << response.bos_token_id() << "\n"
      << "eos_token_id: " << response.eos_token_id() << "\n"
      << "state_bytes_per_session: " << response.state_bytes_per_session() << "\n"
      << "server_version: " << response.server_version() << "\n"
      << "api_version: " << response.api_version() << "\n"
      << "limits.max_prompt_tokens: " << limits.max_prompt_tokens() << "\n"
      << "limits.default_max_tokens: " << limits.default_max_tokens() << "\n"
      << "limits.max_max_tokens: " << limits.max_max_tokens() << "\n"
      << "limits.max_logprobs: " << limits.max_logprobs() << "\n"
      << "limits.max_stop_sequences: " << limits.max_stop_sequences() << "\n"
      << "limits.max_sessions: " << limits.max_sessions() << "\n"
      << "limits.session_idle_ttl: "
      << (limits.has_session_idle_ttl() ? google::protobuf::util::TimeUtil::ToString(limits.session_idle_ttl())
                                        : std::string("none"))
      << "\n"
      << "limits.max_message_bytes: " << limits.max_message_bytes() << "\n";
  return kExitOk;
}

int RunHealth(Invocation& invocation, const ParsedFlags& flags) {
  if (!flags.positional().empty()) return invocation.UsageError("health takes no arguments (see --service)");
  const std::string* service_flag = flags.Get("service");
  const std::string service = service_flag == nullptr ? "" : *service_flag;

  grpc::GenericStub stub(invocation.channel());
  grpc::ClientContext context;
  invocation.PrepareContext(&context);
  ScopedCancellation cancellation(invocation.interrupter(), &context);
  const std::string request_bytes = EncodeHealthCheckRequest(service);
  grpc::Slice slice(request_bytes);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status result) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = std::move(result);
                   done = true;
                   done_cv.notify_one();
                 });
  {
    std::unique_lock<std::mutex> lock(mu);
    done_cv.wait(lock, [&] { return done; });
  }

  int serving_status = 0;
  if (status.error_code() == grpc::StatusCode::NOT_FOUND && !invocation.interrupted()) {
    serving_status = 3;  // the health service answers NOT_FOUND for a service it does not know
  } else if (!status.ok()) {
    return invocation.ReportRpcError(status);
  } else {
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (response.Dump(&slices).ok()) {
      for (const grpc::Slice& piece : slices) bytes.append(reinterpret_cast<const char*>(piece.begin()), piece.size());
    }
    const std::optional<int> decoded = DecodeHealthCheckResponse(bytes);
    if (!decoded.has_value()) {
      return invocation.ReportRpcError(
          grpc::Status(grpc::StatusCode::INTERNAL, "not a grpc.health.v1.HealthCheckResponse"));
    }
    serving_status = *decoded;
  }
  if (invocation.json()) {
    invocation.out() << ToJsonLine(nlohmann::json{{"service", service}, {"status", HealthStatusName(serving_status)}})
                     << "\n";
  } else {
    invocation.out() << HealthStatusName(serving_status) << "\n";
  }
  return serving_status == 1 ? kExitOk : kExitRpcFailed;
}

}  // namespace supra::client

#include "server/services.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/util/error_detail.h"
#include "google/protobuf/util/time_util.h"
#include "server/convert.h"
#include "server/generate_reactor.h"
#include "server/status_conversion.h"

namespace supra::server {
namespace {

// A reactor that has already finished with `status`.
template <typename Reactor>
Reactor* Refused(const grpc::Status& status) {
  class Done final : public Reactor {
   public:
    explicit Done(const grpc::Status& s) { this->Finish(s); }
    void OnDone() override { delete this; }
  };
  return new Done(status);
}

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

grpc::Status UnknownToken(int index, int32_t id, int32_t vocab) {
  return GrpcError(grpc::StatusCode::INVALID_ARGUMENT,
                   absl::StrCat("token_ids[", index, "]: unknown token id ", id, " (vocabulary size ", vocab, ")"),
                   "UNKNOWN_TOKEN", absl::StrCat("token_ids[", index, "]"));
}

}  // namespace

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceServiceImpl::Generate(grpc::CallbackServerContext* context,
                                                                               const v1::GenerateRequest* request) {
  absl::StatusOr<std::string> tenant = ctx_.auth->TenantOf(*context);
  if (!tenant.ok()) return Refused<grpc::ServerWriteReactor<v1::GenerateResponse>>(ToGrpcStatus(tenant.status()));
  return GenerateReactor::Start(context, *request, *tenant, *ctx_.loop);
}

grpc::ServerUnaryReactor* SessionServiceImpl::CreateSession(grpc::CallbackServerContext* context,
                                                            const v1::CreateSessionRequest* request,
                                                            v1::CreateSessionResponse* response) {
  absl::StatusOr<std::string> tenant = ctx_.auth->TenantOf(*context);
  if (!tenant.ok()) return FinishNow(context, ToGrpcStatus(tenant.status()));
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ctx_.loop->CreateSessionAsync(*tenant, ToEngine(*request), [reactor, response](absl::StatusOr<SessionInfo> info) {
    if (info.ok()) ToProto(*info, response->mutable_session());
    reactor->Finish(ToGrpcStatus(info.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::GetSession(grpc::CallbackServerContext* context,
                                                         const v1::GetSessionRequest* request,
                                                         v1::GetSessionResponse* response) {
  absl::StatusOr<std::string> tenant = ctx_.auth->TenantOf(*context);
  if (!tenant.ok()) return FinishNow(context, ToGrpcStatus(tenant.status()));
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ctx_.loop->GetSessionAsync(*tenant, request->session_id(), [reactor, response](absl::StatusOr<SessionInfo> info) {
    if (info.ok()) ToProto(*info, response->mutable_session());
    reactor->Finish(ToGrpcStatus(info.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::ListSessions(grpc::CallbackServerContext* context,
                                                           const v1::ListSessionsRequest* request,
                                                           v1::ListSessionsResponse* response) {
  absl::StatusOr<std::string> tenant = ctx_.auth->TenantOf(*context);
  if (!tenant.ok()) return FinishNow(context, ToGrpcStatus(tenant.status()));
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ctx_.loop->ListSessionsAsync(*tenant, request->page_size(), request->page_token(),
                               [reactor, response](absl::StatusOr<SessionPage> page) {
                                 if (page.ok()) {
                                   for (const SessionInfo& info : page->sessions) {
                                     ToProto(info, response->add_sessions());
                                   }
                                   response->set_next_page_token(page->next_page_token);
                                 }
                                 reactor->Finish(ToGrpcStatus(page.status()));
                               });
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::ForkSession(grpc::CallbackServerContext* context,
                                                          const v1::ForkSessionRequest* request,
                                                          v1::ForkSessionResponse* response) {
  absl::StatusOr<std::string> tenant = ctx_.auth->TenantOf(*context);
  if (!tenant.ok()) return FinishNow(context, ToGrpcStatus(tenant.status()));
  std::optional<int64_t> expected;
  if (request->has_expected_length()) expected = request->expected_length();
  std::optional<std::string> new_id;
  if (request->has_new_session_id()) new_id = request->new_session_id();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ctx_.loop->ForkSessionAsync(*tenant, request->source_session_id(), expected, std::move(new_id),
                              [reactor, response](absl::StatusOr<SessionInfo> info) {
                                if (info.ok()) ToProto(*info, response->mutable_session());
                                reactor->Finish(ToGrpcStatus(info.status()));
                              });
  return reactor;
}

grpc::ServerUnaryReactor* SessionServiceImpl::DeleteSession(grpc::CallbackServerContext* context,
                                                            const v1::DeleteSessionRequest* request,
                                                            v1::DeleteSessionResponse* /*response*/) {
  absl::StatusOr<std::string> tenant = ctx_.auth->TenantOf(*context);
  if (!tenant.ok()) return FinishNow(context, ToGrpcStatus(tenant.status()));
  std::optional<int64_t> expected;
  if (request->has_expected_length()) expected = request->expected_length();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ctx_.loop->DeleteSessionAsync(*tenant, request->session_id(), expected,
                                [reactor](absl::StatusOr<bool> done) { reactor->Finish(ToGrpcStatus(done.status())); });
  return reactor;
}

grpc::ServerWriteReactor<v1::ExportSessionResponse>* SessionServiceImpl::ExportSession(
    grpc::CallbackServerContext* /*context*/, const v1::ExportSessionRequest* /*request*/) {
  return Refused<grpc::ServerWriteReactor<v1::ExportSessionResponse>>(
      GrpcError(grpc::StatusCode::UNIMPLEMENTED, "ExportSession is not implemented by this server version yet",
                "NOT_IMPLEMENTED"));
}

grpc::ServerReadReactor<v1::ImportSessionRequest>* SessionServiceImpl::ImportSession(
    grpc::CallbackServerContext* /*context*/, v1::ImportSessionResponse* /*response*/) {
  return Refused<grpc::ServerReadReactor<v1::ImportSessionRequest>>(
      GrpcError(grpc::StatusCode::UNIMPLEMENTED, "ImportSession is not implemented by this server version yet",
                "NOT_IMPLEMENTED"));
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const v1::GetModelInfoRequest* /*request*/,
                                                         v1::GetModelInfoResponse* response) {
  if (absl::StatusOr<std::string> tenant = ctx_.auth->TenantOf(*context); !tenant.ok()) {
    return FinishNow(context, ToGrpcStatus(tenant.status()));
  }
  const Model& model = *ctx_.model;
  response->set_model_name(ctx_.model_name);
  response->set_model_fingerprint(model.fingerprint());
  response->set_vocab_size(model.config().vocab_size);
  response->set_bos_token_id(model.bos_id());
  response->set_eos_token_id(model.eos_id());
  response->set_state_bytes_per_session(model.state_bytes());
  v1::Limits* limits = response->mutable_limits();
  const RequestLoopOptions& o = ctx_.limits;
  limits->set_max_prompt_tokens(static_cast<int32_t>(o.max_prompt_tokens));
  limits->set_default_max_tokens(o.default_max_tokens);
  limits->set_max_max_tokens(o.max_tokens_limit);
  limits->set_max_logprobs(o.max_top_logprobs);
  limits->set_max_stop_sequences(kMaxStopSequences);
  limits->set_max_sessions(o.sessions.max_sessions);
  if (o.sessions.idle_ttl != absl::InfiniteDuration()) {
    *limits->mutable_session_idle_ttl() = google::protobuf::util::TimeUtil::NanosecondsToDuration(
        absl::ToInt64Nanoseconds(o.sessions.idle_ttl));
  }
  limits->set_max_message_bytes(ctx_.max_message_bytes);
  response->set_server_version(ctx_.server_version);
  response->set_api_version("supra.v1");
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ModelServiceImpl::Tokenize(grpc::CallbackServerContext* context,
                                                     const v1::TokenizeRequest* request,
                                                     v1::TokenizeResponse* response) {
  if (absl::StatusOr<std::string> tenant = ctx_.auth->TenantOf(*context); !tenant.ok()) {
    return FinishNow(context, ToGrpcStatus(tenant.status()));
  }
  const Tokenizer& tokenizer = ctx_.model->tokenizer();
  if (request->add_bos()) response->add_token_ids(ctx_.model->bos_id());
  for (const int32_t id : tokenizer.Encode(request->text())) response->add_token_ids(id);
  for (const int32_t id : response->token_ids()) {
    absl::StatusOr<std::string_view> piece = tokenizer.IdToPiece(id);
    response->add_pieces(piece.ok() ? std::string(*piece) : std::string());
  }
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ModelServiceImpl::Detokenize(grpc::CallbackServerContext* context,
                                                       const v1::DetokenizeRequest* request,
                                                       v1::DetokenizeResponse* response) {
  if (absl::StatusOr<std::string> tenant = ctx_.auth->TenantOf(*context); !tenant.ok()) {
    return FinishNow(context, ToGrpcStatus(tenant.status()));
  }
  const int32_t vocab = ctx_.model->config().vocab_size;
  for (int i = 0; i < request->token_ids_size(); ++i) {
    const int32_t id = request->token_ids(i);
    if (id < 0 || id >= vocab) return FinishNow(context, UnknownToken(i, id, vocab));
  }
  const std::vector<int32_t> ids(request->token_ids().begin(), request->token_ids().end());
  absl::StatusOr<std::string> text = ctx_.model->tokenizer().Decode(ids);
  if (!text.ok()) return FinishNow(context, ToGrpcStatus(text.status()));
  response->set_text(*std::move(text));
  return FinishNow(context, grpc::Status::OK);
}

}  // namespace supra::server

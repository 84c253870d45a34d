#include "tests/client/fake_server.h"

#include <chrono>
#include <thread>

#include "grpcpp/health_check_service_interface.h"
#include "supra/v1/errors.pb.h"

namespace supra::client::test {
namespace {

using supra::v1::GenerateRequest;
using supra::v1::GenerateResponse;

std::string Authorization(const grpc::ServerContext* context) {
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find("authorization");
  return it == metadata.end() ? "" : std::string(it->second.data(), it->second.size());
}

// Records the call; returns the status every call fails with (OK: serve it).
template <typename Request>
grpc::Status Record(FakeState& state, const grpc::ServerContext* context, const char* method, std::vector<Request>& log,
                    const Request& request) {
  std::lock_guard<std::mutex> lock(state.mu);
  state.methods.emplace_back(method);
  state.authorizations.push_back(Authorization(context));
  log.push_back(request);
  return state.fail_with;
}

supra::v1::Session MakeSession(const std::string& id, int64_t length) {
  supra::v1::Session session;
  session.set_session_id(id);
  session.set_length(length);
  session.set_tier(supra::v1::SESSION_TIER_DEVICE);
  session.set_state_bytes(4096);
  session.mutable_create_time()->set_seconds(1700000000);
  return session;
}

class FakeInference final : public supra::v1::InferenceService::Service {
 public:
  explicit FakeInference(std::shared_ptr<FakeState> state) : state_(std::move(state)) {}

  grpc::Status Generate(grpc::ServerContext* context, const GenerateRequest* request,
                        grpc::ServerWriter<GenerateResponse>* writer) override {
    FakeState& state = *state_;
    if (grpc::Status status = Record(state, context, "Generate", state.generate_requests, *request); !status.ok()) {
      return status;
    }
    std::vector<std::string> texts;
    std::function<void()> after_first_chunk;
    std::function<void(supra::v1::Final*)> edit_final;
    std::string session_id;
    int64_t resumed = 0;
    {
      std::lock_guard<std::mutex> lock(state.mu);
      texts = state.chunk_texts;
      after_first_chunk = state.after_first_chunk;
      edit_final = state.edit_final;
      if (request->has_session_id()) {
        session_id = request->session_id();
      } else if (request->create_session()) {
        session_id = "chat-" + std::to_string(++state.created_sessions);
      }
      if (!session_id.empty()) resumed = state.session_lengths[session_id];
    }
    for (size_t i = 0; i < texts.size(); ++i) {
      GenerateResponse response;
      response.set_request_id("req-1");
      supra::v1::Chunk* chunk = response.mutable_chunk();
      chunk->add_token_ids(static_cast<int32_t>(10 + i));
      chunk->set_text(texts[i]);
      if (request->has_logprobs()) {
        supra::v1::TokenLogprob* logprob = chunk->add_logprobs();
        logprob->set_token_id(static_cast<int32_t>(10 + i));
        logprob->set_logprob(-0.5F);
        for (int k = 0; k < request->logprobs(); ++k) {
          supra::v1::TopLogprob* top = logprob->add_top();
          top->set_token_id(static_cast<int32_t>(10 + i + k));
          top->set_logprob(-0.5F - static_cast<float>(k));
        }
      }
      if (!writer->Write(response)) return {grpc::StatusCode::CANCELLED, "client gone"};
      if (i == 0 && after_first_chunk) {
        after_first_chunk();
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (!context->IsCancelled() && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return {grpc::StatusCode::CANCELLED, "cancelled"};
      }
    }
    GenerateResponse response;
    response.set_request_id("req-1");
    supra::v1::Final* final = response.mutable_final();
    final->set_finish_reason(supra::v1::FINISH_REASON_LENGTH);
    final->mutable_usage()->set_prompt_tokens(2);
    final->mutable_usage()->set_resumed_tokens(resumed);
    final->mutable_usage()->set_generated_tokens(static_cast<int32_t>(texts.size()));
    final->set_session_id(session_id);
    final->set_session_length(resumed + 2 + static_cast<int64_t>(texts.size()));
    final->set_seed(request->sampling().has_seed() ? request->sampling().seed() : 42);
    if (edit_final) edit_final(final);
    if (!session_id.empty()) {
      std::lock_guard<std::mutex> lock(state.mu);
      state.session_lengths[session_id] = final->session_length();
    }
    writer->Write(response);
    return grpc::Status::OK;
  }

 private:
  std::shared_ptr<FakeState> state_;
};

class FakeSessions final : public supra::v1::SessionService::Service {
 public:
  explicit FakeSessions(std::shared_ptr<FakeState> state) : state_(std::move(state)) {}

  grpc::Status CreateSession(grpc::ServerContext* context, const supra::v1::CreateSessionRequest* request,
                             supra::v1::CreateSessionResponse* response) override {
    if (grpc::Status s = Record(*state_, context, "CreateSession", state_->create_requests, *request); !s.ok()) {
      return s;
    }
    *response->mutable_session() =
        MakeSession(request->has_session_id() ? request->session_id() : "made-1", request->text().empty() ? 0 : 5);
    return grpc::Status::OK;
  }

  grpc::Status GetSession(grpc::ServerContext* context, const supra::v1::GetSessionRequest* request,
                          supra::v1::GetSessionResponse* response) override {
    if (grpc::Status s = Record(*state_, context, "GetSession", state_->get_requests, *request); !s.ok()) return s;
    *response->mutable_session() = MakeSession(request->session_id(), 17);
    return grpc::Status::OK;
  }

  grpc::Status ListSessions(grpc::ServerContext* context, const supra::v1::ListSessionsRequest* request,
                            supra::v1::ListSessionsResponse* response) override {
    if (grpc::Status s = Record(*state_, context, "ListSessions", state_->list_requests, *request); !s.ok()) {
      return s;
    }
    std::lock_guard<std::mutex> lock(state_->mu);
    const size_t begin = request->page_token().empty() ? 0 : std::stoul(request->page_token());
    const size_t size = request->page_size() == 0 ? 2 : static_cast<size_t>(request->page_size());
    const size_t end = std::min(state_->listed_ids.size(), begin + size);
    for (size_t i = begin; i < end; ++i) *response->add_sessions() = MakeSession(state_->listed_ids[i], 1);
    if (end < state_->listed_ids.size()) response->set_next_page_token(std::to_string(end));
    return grpc::Status::OK;
  }

  grpc::Status ForkSession(grpc::ServerContext* context, const supra::v1::ForkSessionRequest* request,
                           supra::v1::ForkSessionResponse* response) override {
    if (grpc::Status s = Record(*state_, context, "ForkSession", state_->fork_requests, *request); !s.ok()) return s;
    *response->mutable_session() =
        MakeSession(request->has_new_session_id() ? request->new_session_id() : "fork-1", 17);
    return grpc::Status::OK;
  }

  grpc::Status ExportSession(grpc::ServerContext* context, const supra::v1::ExportSessionRequest* request,
                             grpc::ServerWriter<supra::v1::ExportSessionResponse>* writer) override {
    if (grpc::Status s = Record(*state_, context, "ExportSession", state_->export_requests, *request); !s.ok()) {
      return s;
    }
    std::vector<std::string> pieces;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      pieces = state_->snapshot_pieces;
    }
    for (size_t i = 0; i < pieces.size(); ++i) {
      supra::v1::ExportSessionResponse response;
      if (i == 0) *response.mutable_session() = MakeSession(request->session_id(), 17);
      response.set_data(pieces[i]);
      if (!writer->Write(response)) return {grpc::StatusCode::CANCELLED, "client gone"};
    }
    return grpc::Status::OK;
  }

  grpc::Status ImportSession(grpc::ServerContext* context, grpc::ServerReader<supra::v1::ImportSessionRequest>* reader,
                             supra::v1::ImportSessionResponse* response) override {
    supra::v1::ImportSessionRequest request;
    std::string id;
    bool first = true;
    while (reader->Read(&request)) {
      if (first) id = request.session_id();
      if (grpc::Status s =
              Record(*state_, context, first ? "ImportSession" : "ImportSession+", state_->import_messages, request);
          !s.ok()) {
        return s;
      }
      first = false;
    }
    *response->mutable_session() = MakeSession(id.empty() ? "imported-1" : id, 17);
    return grpc::Status::OK;
  }

  grpc::Status DeleteSession(grpc::ServerContext* context, const supra::v1::DeleteSessionRequest* request,
                             supra::v1::DeleteSessionResponse* /*response*/) override {
    return Record(*state_, context, "DeleteSession", state_->delete_requests, *request);
  }

 private:
  std::shared_ptr<FakeState> state_;
};

class FakeModel final : public supra::v1::ModelService::Service {
 public:
  explicit FakeModel(std::shared_ptr<FakeState> state) : state_(std::move(state)) {}

  grpc::Status GetModelInfo(grpc::ServerContext* context, const supra::v1::GetModelInfoRequest* request,
                            supra::v1::GetModelInfoResponse* response) override {
    std::vector<supra::v1::GetModelInfoRequest> ignored;
    if (grpc::Status s = Record(*state_, context, "GetModelInfo", ignored, *request); !s.ok()) return s;
    response->set_model_name("tiny-supra");
    response->set_model_fingerprint("abc123");
    response->set_vocab_size(512);
    response->set_eos_token_id(2);
    response->mutable_limits()->set_max_max_tokens(4096);
    response->set_api_version("supra.v1");
    return grpc::Status::OK;
  }

  grpc::Status Tokenize(grpc::ServerContext* context, const supra::v1::TokenizeRequest* request,
                        supra::v1::TokenizeResponse* response) override {
    if (grpc::Status s = Record(*state_, context, "Tokenize", state_->tokenize_requests, *request); !s.ok()) {
      return s;
    }
    if (request->add_bos()) {
      response->add_token_ids(1);
      response->add_pieces("<s>");
    }
    for (size_t i = 0; i < request->text().size(); ++i) {
      response->add_token_ids(static_cast<int32_t>(100 + i));
      response->add_pieces(request->text().substr(i, 1));
    }
    return grpc::Status::OK;
  }

  grpc::Status Detokenize(grpc::ServerContext* context, const supra::v1::DetokenizeRequest* request,
                          supra::v1::DetokenizeResponse* response) override {
    if (grpc::Status s = Record(*state_, context, "Detokenize", state_->detokenize_requests, *request); !s.ok()) {
      return s;
    }
    response->set_text("text of " + std::to_string(request->token_ids_size()) + " tokens");
    return grpc::Status::OK;
  }

 private:
  std::shared_ptr<FakeState> state_;
};

}  // namespace

FakeServer::FakeServer(std::shared_ptr<grpc::ServerCredentials> credentials) : state_(std::make_shared<FakeState>()) {
  services_.push_back(std::make_unique<FakeInference>(state_));
  services_.push_back(std::make_unique<FakeSessions>(state_));
  services_.push_back(std::make_unique<FakeModel>(state_));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", credentials != nullptr ? credentials : grpc::InsecureServerCredentials(),
                           &port);
  for (const std::unique_ptr<grpc::Service>& service : services_) builder.RegisterService(service.get());
  server_ = builder.BuildAndStart();
  if (server_ != nullptr && port > 0) target_ = "127.0.0.1:" + std::to_string(port);
}

FakeServer::~FakeServer() {
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
}

void FakeServer::SetServing(const std::string& service, bool serving) {
  server_->GetHealthCheckService()->SetServingStatus(service, serving);
}

grpc::Status MakeError(grpc::StatusCode code, const std::string& message, const std::string& reason,
                       const std::string& field, const std::map<std::string, std::string>& metadata,
                       int64_t retry_after_ms) {
  supra::v1::ErrorInfo info;
  info.set_reason(reason);
  info.set_field(field);
  for (const auto& [key, value] : metadata) (*info.mutable_metadata())[key] = value;
  if (retry_after_ms >= 0) {
    info.mutable_retry_after()->set_seconds(retry_after_ms / 1000);
    info.mutable_retry_after()->set_nanos(static_cast<int32_t>(retry_after_ms % 1000) * 1000000);
  }
  supra::v1::RpcStatus status;
  status.set_code(static_cast<int32_t>(code));
  status.set_message(message);
  status.add_details()->PackFrom(info);
  return {code, message, status.SerializeAsString()};
}

}  // namespace supra::client::test

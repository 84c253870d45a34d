// The supra.v1 services on gRPC's callback API. Every handler returns at
// once: Generate hands its reactor to the request loop, session calls run
// on the loop's thread and finish their reactor from there, model calls
// answer from data fixed at start-up.
#ifndef SUPRA_SERVER_SERVICES_H_
#define SUPRA_SERVER_SERVICES_H_

#include <string>

#include "engine/runtime/model.h"
#include "engine/serving/request_loop.h"
#include "engine/serving/request_validation.h"
#include "server/auth.h"
#include "supra/v1/inference.grpc.pb.h"
#include "supra/v1/model.grpc.pb.h"
#include "supra/v1/sessions.grpc.pb.h"

namespace supra::server {

// What every service needs; owned by SupraServer, outlives the services.
struct ServiceContext {
  Model* model = nullptr;
  RequestLoop* loop = nullptr;
  const TokenAuth* auth = nullptr;
  RequestLoopOptions limits;  // as given to the loop
  int max_message_bytes = 0;
  std::string model_name;
  std::string server_version;
};

class InferenceServiceImpl final : public v1::InferenceService::CallbackService {
 public:
  explicit InferenceServiceImpl(const ServiceContext& ctx) : ctx_(ctx) {}
  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                           const v1::GenerateRequest* request) override;

 private:
  const ServiceContext& ctx_;
};

class SessionServiceImpl final : public v1::SessionService::CallbackService {
 public:
  explicit SessionServiceImpl(const ServiceContext& ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* CreateSession(grpc::CallbackServerContext* context,
                                          const v1::CreateSessionRequest* request,
                                          v1::CreateSessionResponse* response) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* context, const v1::GetSessionRequest* request,
                                       v1::GetSessionResponse* response) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* context,
                                         const v1::ListSessionsRequest* request,
                                         v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* ForkSession(grpc::CallbackServerContext* context, const v1::ForkSessionRequest* request,
                                        v1::ForkSessionResponse* response) override;
  grpc::ServerUnaryReactor* DeleteSession(grpc::CallbackServerContext* context,
                                          const v1::DeleteSessionRequest* request,
                                          v1::DeleteSessionResponse* response) override;
  grpc::ServerWriteReactor<v1::ExportSessionResponse>* ExportSession(
      grpc::CallbackServerContext* context, const v1::ExportSessionRequest* request) override;
  grpc::ServerReadReactor<v1::ImportSessionRequest>* ImportSession(grpc::CallbackServerContext* context,
                                                                   v1::ImportSessionResponse* response) override;

 private:
  const ServiceContext& ctx_;
};

class ModelServiceImpl final : public v1::ModelService::CallbackService {
 public:
  explicit ModelServiceImpl(const ServiceContext& ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::GetModelInfoResponse* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context, const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;

 private:
  const ServiceContext& ctx_;
};

}  // namespace supra::server

#endif  // SUPRA_SERVER_SERVICES_H_

// In-process gRPC smoke test: trivial supra.v1 services on a loopback port,
// called through the generated stubs. Proves the generated code, protobuf and
// gRPC link and talk, including a server stream and an error's details.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "supra/v1/errors.pb.h"
#include "supra/v1/inference.grpc.pb.h"
#include "supra/v1/model.grpc.pb.h"

namespace supra::v1 {
namespace {

class FakeModelService final : public ModelService::Service {
 public:
  grpc::Status GetModelInfo(grpc::ServerContext* /*context*/, const GetModelInfoRequest* /*request*/,
                            GetModelInfoResponse* response) override {
    response->set_model_name("tiny");
    response->set_model_fingerprint("0123abcd");
    response->set_vocab_size(512);
    response->set_bos_token_id(1);
    response->set_eos_token_id(2);
    response->set_state_bytes_per_session(int64_t{64} << 20);
    response->mutable_limits()->set_max_prompt_tokens(8192);
    response->mutable_limits()->set_default_max_tokens(256);
    response->mutable_limits()->mutable_session_idle_ttl()->set_seconds(3600);
    response->set_api_version("supra.v1");
    return grpc::Status::OK;
  }

  // Refuses every id >= 512 with the structured detail errors.proto describes.
  grpc::Status Detokenize(grpc::ServerContext* /*context*/, const DetokenizeRequest* request,
                          DetokenizeResponse* response) override {
    for (int i = 0; i < request->token_ids_size(); ++i) {
      if (request->token_ids(i) >= 512) {
        ErrorInfo info;
        info.set_reason("UNKNOWN_TOKEN");
        info.set_field("token_ids[" + std::to_string(i) + "]");
        RpcStatus status;
        status.set_code(grpc::StatusCode::INVALID_ARGUMENT);
        status.set_message("token id out of range");
        status.add_details()->PackFrom(info);
        return {grpc::StatusCode::INVALID_ARGUMENT, status.message(), status.SerializeAsString()};
      }
    }
    response->set_text("ok");
    return grpc::Status::OK;
  }
};

// Streams one chunk per prompt token, echoed, then a Final.
class EchoInferenceService final : public InferenceService::Service {
 public:
  grpc::Status Generate(grpc::ServerContext* /*context*/, const GenerateRequest* request,
                        grpc::ServerWriter<GenerateResponse>* writer) override {
    for (int32_t id : request->tokens().ids()) {
      GenerateResponse response;
      response.set_request_id(request->request_id());
      response.mutable_chunk()->add_token_ids(id);
      if (!writer->Write(response)) return {grpc::StatusCode::CANCELLED, "client gone"};
    }
    GenerateResponse response;
    response.set_request_id(request->request_id());
    Final* final = response.mutable_final();
    final->set_finish_reason(FINISH_REASON_LENGTH);
    final->mutable_usage()->set_generated_tokens(request->tokens().ids_size());
    final->set_session_length(request->tokens().ids_size());
    writer->Write(response);
    return grpc::Status::OK;
  }
};

class LoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&model_service_);
    builder.RegisterService(&inference_service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  }

  static void SetDeadline(grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  }

  FakeModelService model_service_;
  EchoInferenceService inference_service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(LoopbackTest, GetModelInfoReturnsWhatTheServerSet) {
  auto stub = ModelService::NewStub(channel_);
  grpc::ClientContext context;
  SetDeadline(context);
  GetModelInfoResponse response;
  const grpc::Status status = stub->GetModelInfo(&context, GetModelInfoRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.model_name(), "tiny");
  EXPECT_EQ(response.model_fingerprint(), "0123abcd");
  EXPECT_EQ(response.vocab_size(), 512);
  EXPECT_EQ(response.bos_token_id(), 1);
  EXPECT_EQ(response.eos_token_id(), 2);
  EXPECT_EQ(response.state_bytes_per_session(), int64_t{64} << 20);
  EXPECT_EQ(response.limits().max_prompt_tokens(), 8192);
  EXPECT_EQ(response.limits().default_max_tokens(), 256);
  EXPECT_EQ(response.limits().session_idle_ttl().seconds(), 3600);
  EXPECT_EQ(response.api_version(), "supra.v1");
}

TEST_F(LoopbackTest, ErrorDetailsReachTheClient) {
  auto stub = ModelService::NewStub(channel_);
  grpc::ClientContext context;
  SetDeadline(context);
  DetokenizeRequest request;
  request.add_token_ids(5);
  request.add_token_ids(9999);
  DetokenizeResponse response;
  const grpc::Status status = stub->Detokenize(&context, request, &response);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "token id out of range");

  RpcStatus details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  EXPECT_EQ(details.code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_EQ(details.details_size(), 1);
  ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "UNKNOWN_TOKEN");
  EXPECT_EQ(info.field(), "token_ids[1]");
}

TEST_F(LoopbackTest, GenerateStreamsChunksThenFinal) {
  auto stub = InferenceService::NewStub(channel_);
  grpc::ClientContext context;
  SetDeadline(context);
  GenerateRequest request;
  request.set_request_id("r1");
  for (int32_t id : {7, 8, 9}) request.mutable_tokens()->add_ids(id);

  std::unique_ptr<grpc::ClientReader<GenerateResponse>> reader = stub->Generate(&context, request);
  std::vector<int32_t> tokens;
  int finals = 0;
  GenerateResponse response;
  while (reader->Read(&response)) {
    EXPECT_EQ(response.request_id(), "r1");
    if (response.has_chunk()) {
      EXPECT_EQ(finals, 0) << "chunk after final";
      tokens.insert(tokens.end(), response.chunk().token_ids().begin(), response.chunk().token_ids().end());
    } else {
      ASSERT_TRUE(response.has_final());
      ++finals;
      EXPECT_EQ(response.final().finish_reason(), FINISH_REASON_LENGTH);
      EXPECT_EQ(response.final().usage().generated_tokens(), 3);
      EXPECT_EQ(response.final().session_length(), 3);
    }
  }
  const grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(tokens, (std::vector<int32_t>{7, 8, 9}));
  EXPECT_EQ(finals, 1);
}

}  // namespace
}  // namespace supra::v1

// A supra-server started in process on a loopback port with the tiny "mha"
// model, and the helpers the integration tests share.
#ifndef SUPRA_TESTS_SERVER_SERVER_TEST_UTIL_H_
#define SUPRA_TESTS_SERVER_SERVER_TEST_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <sys/types.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/server.h"
#include "supra/v1/errors.pb.h"
#include "supra/v1/inference.grpc.pb.h"
#include "supra/v1/model.grpc.pb.h"
#include "supra/v1/sessions.grpc.pb.h"

namespace supra::server::testing {

inline const std::string kData = SUPRA_TEST_DATA_DIR;

// Options of a small server: CPU backend, 4 state slots, 1 thread; the CUDA
// backend instead when SUPRA_TEST_BACKEND=cuda (for runs on the GPU machine).
ServerOptions SmallServerOptions();
bool TestOnCuda();

// The binaries the process tests run: the build's, or the paths in the
// environment variables of the same names (binaries bundled for the GPU machine).
std::string ServerBinary();  // SUPRA_SERVER_BINARY
std::string CliBinary();     // SUPRA_CLI_BINARY

// The result of reading one Generate stream to its end.
struct Streamed {
  std::vector<v1::GenerateResponse> messages;
  std::vector<int32_t> ids;  // every Chunk's token_ids, in order
  std::string text;          // every Chunk's text, in order
  std::optional<v1::Final> final;
  grpc::Status status;
};

class ServerFixture {
 public:
  explicit ServerFixture(ServerOptions options = SmallServerOptions());
  ~ServerFixture();

  SupraServer& server() { return *server_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  v1::InferenceService::Stub& inference() { return *inference_; }
  v1::SessionService::Stub& sessions() { return *sessions_; }
  v1::ModelService::Stub& models() { return *models_; }

  // Runs a Generate call to its end; `token` (if any) is sent as a bearer token.
  Streamed Generate(const v1::GenerateRequest& request, const std::string& token = "");
  // grpc.health.v1 Check for `service`: 1 SERVING, 2 NOT_SERVING, -1 on error.
  int Health(const std::string& service = "");

 private:
  std::unique_ptr<SupraServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InferenceService::Stub> inference_;
  std::unique_ptr<v1::SessionService::Stub> sessions_;
  std::unique_ptr<v1::ModelService::Stub> models_;
};

// A greedy text request with the repetition penalty that keeps the tiny
// model's greedy text from looping.
v1::GenerateRequest GreedyText(const std::string& text, int32_t max_tokens);
v1::GenerateRequest GreedyTokens(const std::vector<int32_t>& ids, int32_t max_tokens);

// The ErrorInfo in a status's details; reason "" when there is none.
v1::ErrorInfo ErrorInfoOf(const grpc::Status& status);

// The supra-server binary in a child process, on a free loopback port, with
// the tiny model and `extra` flags; its stderr is collected.
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& extra);
  ~ServerProcess();  // SIGKILL if still running
  int port() const { return port_; }  // 0 when it did not start
  pid_t pid() const { return pid_; }
  // Waits for the process to exit; returns its wait status and collects the rest of its log.
  int Wait();
  const std::string& log() const { return log_; }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
  FILE* err_ = nullptr;
  std::string log_;
  bool waited_ = false;
};

// grpc.health.v1 Check through a generic stub, with supra-cli's encoding of
// the two messages (Debian ships no generated health client): 1 SERVING,
// 2 NOT_SERVING, 3 SERVICE_UNKNOWN, -1 on error.
int HealthCheck(grpc::Channel& channel, const std::string& service);

}  // namespace supra::server::testing

#endif  // SUPRA_TESTS_SERVER_SERVER_TEST_UTIL_H_

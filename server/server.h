// supra-server as a library: loads the model, starts the request loop and
// the gRPC server (supra.v1 services, grpc.health.v1, reflection), and
// drains on request. main.cc adds flags and signals; tests start it in
// process on a loopback port.
#ifndef SUPRA_SERVER_SERVER_H_
#define SUPRA_SERVER_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/runtime/model.h"
#include "engine/serving/request_loop.h"
#include "server/auth.h"
#include "server/services.h"

namespace supra::server {

struct ServerOptions {
  std::string listen = "0.0.0.0:50051";  // host:port; port 0 picks a free one (see SupraServer::port)
  ModelOptions model;
  RequestLoopOptions loop;
  std::string token_file;  // empty: no authentication (one anonymous tenant)
  // TLS: certificate chain and private key (PEM) turn TLS on; a client CA
  // bundle additionally requires and verifies client certificates (mTLS).
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  int max_message_bytes = 4 << 20;
  absl::Duration keepalive_time = absl::Seconds(60);     // server pings an idle connection this often
  absl::Duration keepalive_timeout = absl::Seconds(20);  // and closes it when the ping is not answered
  absl::Duration min_client_ping_interval = absl::Seconds(10);  // clients pinging faster are closed
  int max_concurrent_streams = 1024;                   // per connection
};

class SupraServer {
 public:
  // Loads the model and listens. Errors name what failed (model files,
  // token file, TLS files, the address).
  static absl::StatusOr<std::unique_ptr<SupraServer>> Start(const ServerOptions& options);
  ~SupraServer();  // Shutdown(0) if not done

  int port() const { return port_; }
  const Model& model() const { return *model_; }

  // Graceful shutdown: health NOT_SERVING, new Generate calls refused
  // (UNAVAILABLE, DRAINING), in-flight turns run on until `drain_timeout`
  // and are then cut (their streams end with a Final saying CANCELLED),
  // then the gRPC server stops. Idempotent; returns when done.
  void Shutdown(absl::Duration drain_timeout);
  // Blocks until Shutdown has finished.
  void Wait();

 private:
  SupraServer() = default;

  std::unique_ptr<Model> model_;
  TokenAuth auth_;
  std::unique_ptr<RequestLoop> loop_;
  ServiceContext context_;
  std::unique_ptr<InferenceServiceImpl> inference_;
  std::unique_ptr<SessionServiceImpl> sessions_;
  std::unique_ptr<ModelServiceImpl> model_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  std::mutex mu_;
  bool shut_down_ = false;
};

}  // namespace supra::server

#endif  // SUPRA_SERVER_SERVER_H_

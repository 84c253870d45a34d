#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "server/log.h"

#ifndef SUPRA_SERVER_VERSION
#define SUPRA_SERVER_VERSION "0.0.0"
#endif

namespace supra::server {
namespace {

constexpr const char* kServices[] = {"", "supra.v1.InferenceService", "supra.v1.SessionService",
                                     "supra.v1.ModelService"};

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the ", what, " ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& o) {
  if (o.tls_cert_file.empty() && o.tls_key_file.empty()) {
    if (!o.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("a client CA (mTLS) needs a server certificate and key (TLS)");
    }
    return grpc::InsecureServerCredentials();
  }
  if (o.tls_cert_file.empty() || o.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate chain and a private key file");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  auto cert = ReadFile(o.tls_cert_file, "TLS certificate");
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(o.tls_key_file, "TLS private key");
  if (!key.ok()) return key.status();
  pair.cert_chain = *std::move(cert);
  pair.private_key = *std::move(key);
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!o.tls_client_ca_file.empty()) {
    auto ca = ReadFile(o.tls_client_ca_file, "client CA bundle");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SupraServer>> SupraServer::Start(const ServerOptions& options) {
  std::unique_ptr<SupraServer> s(new SupraServer());
  if (!options.token_file.empty()) {
    absl::StatusOr<TokenAuth> auth = TokenAuth::Load(options.token_file);
    if (!auth.ok()) return auth.status();
    s->auth_ = *std::move(auth);
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = Credentials(options);
  if (!credentials.ok()) return credentials.status();

  const absl::Time load_start = absl::Now();
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(options.model);
  if (!model.ok()) return model.status();
  s->model_ = *std::move(model);
  LogInfo(absl::StrCat("loaded ", s->model_->dir(), " (", s->model_->weights_format(), ", fingerprint ",
                       s->model_->fingerprint().substr(0, 16), ") on ", options.model.backend, " in ",
                       absl::FormatDuration(absl::Now() - load_start)));
  s->loop_ = std::make_unique<RequestLoop>(*s->model_, options.loop);

  ServiceContext& c = s->context_;
  c.model = s->model_.get();
  c.loop = s->loop_.get();
  c.auth = &s->auth_;
  c.limits = options.loop;
  c.max_message_bytes = options.max_message_bytes;
  c.model_name = std::filesystem::path(s->model_->dir()).lexically_normal().filename().string();
  if (c.model_name.empty()) {
    c.model_name = std::filesystem::path(s->model_->dir()).lexically_normal().parent_path().filename().string();
  }
  c.server_version = SUPRA_SERVER_VERSION;
  s->inference_ = std::make_unique<InferenceServiceImpl>(c);
  s->sessions_ = std::make_unique<SessionServiceImpl>(c);
  s->model_service_ = std::make_unique<ModelServiceImpl>(c);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, *credentials, &s->port_);
  builder.RegisterService(s->inference_.get());
  builder.RegisterService(s->sessions_.get());
  builder.RegisterService(s->model_service_.get());
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options.min_client_ping_interval)));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  grpc::HealthCheckServiceInterface* health = s->server_->GetHealthCheckService();
  for (const char* service : kServices) health->SetServingStatus(service, true);
  LogInfo(absl::StrCat("serving supra.v1 on ", options.listen, " (port ", s->port_, ")",
                       credentials.ok() && !options.tls_cert_file.empty()
                           ? (options.tls_client_ca_file.empty() ? ", TLS" : ", mTLS")
                           : ", plaintext",
                       s->auth_.enabled() ? absl::StrCat(", bearer tokens for ", s->auth_.size(), " clients")
                                          : ", no authentication"));
  return s;
}

SupraServer::~SupraServer() { Shutdown(absl::ZeroDuration()); }

void SupraServer::Shutdown(absl::Duration drain_timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  const absl::Time start = absl::Now();
  LogInfo(absl::StrCat("draining: ", loop_->in_flight(), " requests in flight, drain timeout ",
                       absl::FormatDuration(drain_timeout)));
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  for (const char* service : kServices) health->SetServingStatus(service, false);
  loop_->Drain(drain_timeout);  // every turn has ended (finished or cut) when it returns
  // Streams still writing their last messages get a few seconds; then gRPC
  // cancels what is left.
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  LogInfo(absl::StrCat("drained in ", absl::FormatDuration(absl::Now() - start)));
}

void SupraServer::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace supra::server

#include "tests/server/server_test_util.h"

#include <grpcpp/generic/generic_stub.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <cstdlib>
#include <cstring>

#include "client/model_commands.h"
#include "gtest/gtest.h"

extern char** environ;

namespace supra::server::testing {

bool TestOnCuda() {
  const char* backend = std::getenv("SUPRA_TEST_BACKEND");
  return backend != nullptr && std::string(backend) == "cuda";
}

std::string ServerBinary() {
  const char* path = std::getenv("SUPRA_SERVER_BINARY");
  return path != nullptr ? path : SUPRA_SERVER_BINARY;
}

std::string CliBinary() {
  const char* path = std::getenv("SUPRA_CLI_BINARY");
  return path != nullptr ? path : SUPRA_CLI_BINARY;
}

ServerOptions SmallServerOptions() {
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.model.dir = kData + "/models/mha";
  o.model.cpu.num_slots = 4;
  o.model.cpu.num_threads = 1;
  if (TestOnCuda()) {
    o.model.backend = "cuda";
    o.model.cuda.num_slots = 4;
    o.model.cuda.max_batch = 4;
  }
  o.loop.prefill_chunk = 16;
  o.loop.sessions.max_sessions = 64;
  o.loop.max_tokens_limit = 100000;  // long turns that deadlines and drains must cut
  o.loop.max_prompt_tokens = 2048;
  return o;
}

ServerFixture::ServerFixture(ServerOptions options) {
  absl::StatusOr<std::unique_ptr<SupraServer>> server = SupraServer::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) std::abort();
  server_ = *std::move(server);
  channel_ = grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
  inference_ = v1::InferenceService::NewStub(channel_);
  sessions_ = v1::SessionService::NewStub(channel_);
  models_ = v1::ModelService::NewStub(channel_);
}

ServerFixture::~ServerFixture() { server_->Shutdown(absl::Seconds(5)); }

Streamed ServerFixture::Generate(const v1::GenerateRequest& request, const std::string& token) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  Streamed out;
  auto reader = inference_->Generate(&context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    if (response.has_chunk()) {
      out.ids.insert(out.ids.end(), response.chunk().token_ids().begin(), response.chunk().token_ids().end());
      out.text += response.chunk().text();
    }
    if (response.has_final()) out.final = response.final();
    out.messages.push_back(response);
  }
  out.status = reader->Finish();
  return out;
}

int ServerFixture::Health(const std::string& service) { return HealthCheck(*channel_, service); }

v1::GenerateRequest GreedyText(const std::string& text, int32_t max_tokens) {
  v1::GenerateRequest r;
  r.set_text(text);
  r.mutable_sampling()->set_temperature(0);
  r.mutable_sampling()->set_repetition_penalty(1.3f);
  r.set_max_tokens(max_tokens);
  return r;
}

v1::GenerateRequest GreedyTokens(const std::vector<int32_t>& ids, int32_t max_tokens) {
  v1::GenerateRequest r;
  for (int32_t id : ids) r.mutable_tokens()->add_ids(id);
  r.mutable_sampling()->set_temperature(0);
  r.mutable_sampling()->set_repetition_penalty(1.3f);
  r.set_max_tokens(max_tokens);
  return r;
}

v1::ErrorInfo ErrorInfoOf(const grpc::Status& status) {
  v1::RpcStatus rpc;
  v1::ErrorInfo info;
  if (!rpc.ParseFromString(status.error_details()) || rpc.details_size() == 0) return info;
  EXPECT_EQ(rpc.code(), static_cast<int>(status.error_code()));
  EXPECT_EQ(rpc.message(), status.error_message());
  EXPECT_TRUE(rpc.details(0).UnpackTo(&info)) << rpc.details(0).type_url();
  return info;
}

ServerProcess::ServerProcess(const std::vector<std::string>& extra) {
  int err_pipe[2];
  if (pipe(err_pipe) != 0) return;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_addclose(&actions, err_pipe[0]);
  std::vector<std::string> args = {ServerBinary(), "--model_dir=" + kData + "/models/mha",
                                   "--listen=127.0.0.1:0", "--state_slots=4", "--cpu_threads=1",
                                   TestOnCuda() ? "--device=cuda" : "--device=cpu"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int spawned = posix_spawn(&pid_, args[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(err_pipe[1]);
  err_ = fdopen(err_pipe[0], "r");
  if (spawned != 0) {
    pid_ = 0;
    return;
  }
  // The server logs "(port N)" once it listens. (No std::regex: GCC 12
  // warns inside it under the sanitizers.)
  char line[4096];
  while (port_ == 0 && std::fgets(line, sizeof line, err_) != nullptr) {
    log_ += line;
    const char* at = std::strstr(line, "(port ");
    if (at != nullptr) port_ = std::atoi(at + 6);
  }
}

int ServerProcess::Wait() {
  int status = 0;
  if (pid_ != 0 && !waited_) {
    waitpid(pid_, &status, 0);
    waited_ = true;
  }
  char line[4096];
  while (err_ != nullptr && std::fgets(line, sizeof line, err_) != nullptr) log_ += line;
  return status;
}

ServerProcess::~ServerProcess() {
  if (pid_ != 0 && !waited_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (err_ != nullptr) std::fclose(err_);
}

int HealthCheck(grpc::Channel& channel, const std::string& service) {
  const std::string request = client::EncodeHealthCheckRequest(service);
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1), out;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &in, &out, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = s;
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  if (!status.ok()) return status.error_code() == grpc::StatusCode::NOT_FOUND ? 3 : -1;
  std::vector<grpc::Slice> slices;
  if (!out.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return client::DecodeHealthCheckResponse(bytes).value_or(-1);
}

}  // namespace supra::server::testing

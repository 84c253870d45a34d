// Cancellation, deadlines, disconnects, drain (in process and on SIGTERM),
// health, reflection and TLS.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include <grpcpp/generic/generic_stub.h>

#include "gtest/gtest.h"
#include "tests/server/server_test_util.h"

namespace supra::server::testing {
namespace {

v1::GenerateRequest LongTurn(const std::string& session) {
  v1::GenerateRequest r = GreedyText("Once upon a time", 100000);
  r.set_ignore_eos(true);
  if (!session.empty()) r.set_session_id(session);
  return r;
}

int64_t SessionLength(ServerFixture& f, const std::string& id) {
  v1::GetSessionRequest request;
  request.set_session_id(id);
  v1::GetSessionResponse response;
  for (int attempt = 0; attempt < 200; ++attempt) {  // wait until the loop has ended the turn
    grpc::ClientContext context;
    if (!f.sessions().GetSession(&context, request, &response).ok()) return -1;
    if (!response.session().busy()) return response.session().length();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -2;
}

v1::Session Create(ServerFixture& f, const std::string& id) {
  v1::CreateSessionRequest request;
  request.set_session_id(id);
  v1::CreateSessionResponse response;
  grpc::ClientContext context;
  EXPECT_TRUE(f.sessions().CreateSession(&context, request, &response).ok());
  return response.session();
}

TEST(ServerLifecycleTest, DeadlineExceededEndsTheTurnAndKeepsWhatWasSent) {
  ServerFixture f;
  Create(f, "slow");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  auto reader = f.inference().Generate(&context, LongTurn("slow"));
  v1::GenerateResponse response;
  int64_t received = 0;
  while (reader->Read(&response)) received += response.chunk().token_ids_size();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  const int64_t length = SessionLength(f, "slow");
  v1::TokenizeRequest tr;
  tr.set_text("Once upon a time");
  tr.set_add_bos(true);
  v1::TokenizeResponse tokens;
  grpc::ClientContext c2;
  ASSERT_TRUE(f.models().Tokenize(&c2, tr, &tokens).ok());
  ASSERT_GE(tokens.token_ids_size(), 2);
  EXPECT_GE(length, tokens.token_ids_size() + received);
  EXPECT_LT(length, tokens.token_ids_size() + 100000);
  // The session is free again.
  v1::GenerateRequest next = GreedyText(" more", 2);
  next.set_session_id("slow");
  next.set_expected_session_length(length);
  EXPECT_TRUE(f.Generate(next).status.ok());
}

TEST(ServerLifecycleTest, ClientThatDisconnectsFreesItsRequest) {
  ServerFixture f;
  Create(f, "gone");
  {
    // A channel of its own, dropped mid-stream without cancelling.
    auto channel = grpc::CreateChannel(f.address(), grpc::InsecureChannelCredentials());
    auto stub = v1::InferenceService::NewStub(channel);
    auto context = std::make_unique<grpc::ClientContext>();
    auto reader = stub->Generate(context.get(), LongTurn("gone"));
    v1::GenerateResponse response;
    ASSERT_TRUE(reader->Read(&response));
    context->TryCancel();
    reader->Finish();
  }
  const int64_t length = SessionLength(f, "gone");
  EXPECT_GT(length, 0);
  EXPECT_LT(length, 100000);
  v1::GenerateRequest next = GreedyText(" more", 2);
  next.set_session_id("gone");
  EXPECT_TRUE(f.Generate(next).status.ok());
}

TEST(ServerLifecycleTest, SlowReaderStallsOnlyItsOwnTurnWithABoundedBuffer) {
  ServerFixture f;
  Create(f, "slow-reader");
  // Its own channel with a small flow-control window, never read.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 1 << 20);
  auto channel = grpc::CreateCustomChannel(f.address(), grpc::InsecureChannelCredentials(), args);
  auto stub = v1::InferenceService::NewStub(channel);
  grpc::ClientContext context;
  auto reader = stub->Generate(&context, LongTurn("slow-reader"));
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));  // started; now stop reading
  auto length_now = [&] {
    v1::GetSessionRequest request;
    request.set_session_id("slow-reader");
    v1::GetSessionResponse out;
    grpc::ClientContext c;
    EXPECT_TRUE(f.sessions().GetSession(&c, request, &out).ok());
    EXPECT_TRUE(out.session().busy());
    return out.session().length();
  };
  // Others are served meanwhile.
  const Streamed other = f.Generate(GreedyText("Hello", 50));
  ASSERT_TRUE(other.status.ok()) << other.status.error_message();
  EXPECT_EQ(other.ids.size(), 50u);
  // The unread turn stalls once the transport's window is full: its length
  // stops growing (thousands of tokens a second otherwise). Polled, so that
  // a slow machine only takes longer to get there.
  int64_t last = length_now(), unchanged_for = 0;
  for (int poll = 0; poll < 200 && unchanged_for < 4; ++poll) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const int64_t now = length_now();
    unchanged_for = now == last ? unchanged_for + 1 : 0;
    last = now;
  }
  EXPECT_EQ(unchanged_for, 4) << "the unread turn kept generating";
  EXPECT_LT(last, 100000);
  context.TryCancel();
  while (reader->Read(&response)) {
  }
  reader->Finish();
}

TEST(ServerLifecycleTest, DrainFinishesInFlightStreamsAndRefusesNewOnes) {
  ServerFixture f;
  EXPECT_EQ(f.Health(), 1);
  EXPECT_EQ(f.Health("supra.v1.InferenceService"), 1);
  // One turn that finishes within the drain timeout, one that is cut by it.
  v1::GenerateRequest short_turn = GreedyText("Hello", 30);
  short_turn.set_ignore_eos(true);
  grpc::ClientContext c1, c2;
  auto r1 = f.inference().Generate(&c1, short_turn);
  auto r2 = f.inference().Generate(&c2, LongTurn(""));
  v1::GenerateResponse response;
  std::optional<v1::Final> f1, f2;
  ASSERT_TRUE(r1->Read(&response));  // both turns are running
  if (response.has_final()) f1 = response.final();
  ASSERT_TRUE(r2->Read(&response));
  // The tiny model runs about ten thousand tokens a second: the long turn
  // (100000 tokens) outlasts a 2 s drain, the short one (30) does not.
  std::thread drain([&] { f.server().Shutdown(absl::Seconds(2)); });
  // While draining: NOT_SERVING and new turns refused.
  int health = 1;
  for (int poll = 0; poll < 150 && health == 1; ++poll) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    health = f.Health();
  }
  EXPECT_EQ(health, 2);
  const Streamed refused = f.Generate(GreedyText("Hi", 2));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ErrorInfoOf(refused.status).reason(), "DRAINING");
  while (r1->Read(&response)) {
    if (response.has_final()) f1 = response.final();
  }
  while (r2->Read(&response)) {
    if (response.has_final()) f2 = response.final();
  }
  EXPECT_TRUE(r1->Finish().ok());
  EXPECT_TRUE(r2->Finish().ok());
  drain.join();
  ASSERT_TRUE(f1 && f2);
  EXPECT_EQ(f1->finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(f2->finish_reason(), v1::FINISH_REASON_CANCELLED);
}

TEST(ServerLifecycleTest, ReflectionListsTheServices) {
  ServerFixture f;
  // ServerReflectionRequest{list_services = 7: ""} over the bidi stream.
  grpc::GenericStub stub(f.channel());
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  const std::string request("\x3a\x00", 2);
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1), in;
  call->Write(out, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  call->Read(&in, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(in.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_NE(bytes.find("supra.v1.InferenceService"), std::string::npos);
  EXPECT_NE(bytes.find("supra.v1.SessionService"), std::string::npos);
  EXPECT_NE(bytes.find("grpc.health.v1.Health"), std::string::npos);
  context.TryCancel();
  call->Finish(nullptr, reinterpret_cast<void*>(4));
  grpc::Status status;
  while (cq.Next(&tag, &ok)) {
    if (tag == reinterpret_cast<void*>(4)) break;
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// The binary, as an operator runs it: SIGTERM drains and exits 0.
TEST(ServerLifecycleTest, SigtermDrainsInFlightStreamsAndExitsZero) {
  ServerProcess server({"--drain_timeout=20s"});
  ASSERT_GT(server.port(), 0) << server.log();
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()), grpc::InsecureChannelCredentials());
  auto stub = v1::InferenceService::NewStub(channel);
  v1::GenerateRequest request = GreedyText("Hello", 200);
  request.set_ignore_eos(true);
  grpc::ClientContext context;
  auto reader = stub->Generate(&context, request);
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  int tokens = response.chunk().token_ids_size();
  std::optional<v1::Final> final;
  while (reader->Read(&response)) {
    tokens += response.chunk().token_ids_size();
    if (response.has_final()) final = response.final();
  }
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_TRUE(final);
  EXPECT_EQ(final->finish_reason(), v1::FINISH_REASON_LENGTH);  // it finished within the drain timeout
  EXPECT_EQ(tokens, 200);
  const int status = server.Wait();
  ASSERT_TRUE(WIFEXITED(status)) << server.log();
  EXPECT_EQ(WEXITSTATUS(status), 0) << server.log();
  EXPECT_NE(server.log().find("SIGTERM"), std::string::npos) << server.log();
}

TEST(ServerLifecycleTest, StartUpFailureExitsOneWithTheReason) {
  ServerProcess server({"--token_file=/nonexistent/tokens"});
  EXPECT_EQ(server.port(), 0);
  const int status = server.Wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(server.log().find("/nonexistent/tokens"), std::string::npos) << server.log();
}

// TLS and mTLS with certificates made by openssl for this test.
class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = ::testing::TempDir() + "/supra_tls_" + std::to_string(getpid());  // ctest runs tests in parallel
    const std::string script = "set -e; rm -rf " + dir_ + "; mkdir -p " + dir_ + "; cd " + dir_ +
                               "; openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca"
                               " -keyout ca.key -out ca.crt 2>/dev/null;"
                               " printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san.ext;"
                               " for n in server client; do"
                               "  openssl req -newkey rsa:2048 -nodes -subj /CN=$n -keyout $n.key -out $n.csr 2>/dev/null;"
                               "  openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
                               "   -extfile san.ext -out $n.crt 2>/dev/null; done";
    ASSERT_EQ(std::system(script.c_str()), 0) << "openssl failed (scripts/install-deps.sh installs it)";
  }
  static std::string Read(const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static ServerOptions Options(bool mtls) {
    ServerOptions o = SmallServerOptions();
    o.tls_cert_file = dir_ + "/server.crt";
    o.tls_key_file = dir_ + "/server.key";
    if (mtls) o.tls_client_ca_file = dir_ + "/ca.crt";
    return o;
  }
  static grpc::Status Call(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials) {
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    auto channel = grpc::CreateCustomChannel(address, credentials, args);
    auto stub = v1::ModelService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetModelInfoResponse info;
    return stub->GetModelInfo(&context, {}, &info);
  }
  static std::string dir_;
};
std::string TlsTest::dir_;

TEST_F(TlsTest, TlsServesVerifiedClientsOnly) {
  const absl::StatusOr<std::unique_ptr<SupraServer>> server = SupraServer::Start(Options(false));
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = "127.0.0.1:" + std::to_string((*server)->port());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = Read("ca.crt");
  EXPECT_TRUE(Call(address, grpc::SslCredentials(ssl)).ok());
  EXPECT_FALSE(Call(address, grpc::InsecureChannelCredentials()).ok());
  (*server)->Shutdown(absl::Seconds(1));
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificate) {
  const absl::StatusOr<std::unique_ptr<SupraServer>> server = SupraServer::Start(Options(true));
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = "127.0.0.1:" + std::to_string((*server)->port());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = Read("ca.crt");
  EXPECT_EQ(Call(address, grpc::SslCredentials(ssl)).error_code(), grpc::StatusCode::UNAVAILABLE);
  ssl.pem_private_key = Read("client.key");
  ssl.pem_cert_chain = Read("client.crt");
  EXPECT_TRUE(Call(address, grpc::SslCredentials(ssl)).ok());
  (*server)->Shutdown(absl::Seconds(1));
}

TEST(ServerStartTest, BadFilesAreClearErrors) {
  ServerOptions o = SmallServerOptions();
  o.model.dir = kData + "/no-such-model";
  EXPECT_FALSE(SupraServer::Start(o).ok());
  o = SmallServerOptions();
  o.token_file = "/nonexistent/tokens";
  const auto no_tokens = SupraServer::Start(o);
  ASSERT_FALSE(no_tokens.ok());
  EXPECT_NE(no_tokens.status().message().find("/nonexistent/tokens"), std::string::npos);
  o = SmallServerOptions();
  o.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_FALSE(SupraServer::Start(o).ok());
}

}  // namespace
}  // namespace supra::server::testing

// Every bad input gets its status, reason and field, and leaves the server
// healthy; busy sessions, tokens and tenants.
#include <fstream>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <thread>

#include "gtest/gtest.h"
#include "tests/server/server_test_util.h"

namespace supra::server::testing {
namespace {

struct BadInput {
  std::string name;
  std::function<void(v1::GenerateRequest&)> edit;
  grpc::StatusCode code;
  std::string reason, field;
};

TEST(ServerErrorsTest, BadInputsGetAClearStatusAndTheServerStaysHealthy) {
  ServerFixture f;
  const std::vector<BadInput> cases = {
      {"no prompt", [](v1::GenerateRequest& r) { r.clear_text(); }, grpc::StatusCode::INVALID_ARGUMENT,
       "INVALID_PROMPT", "prompt"},
      {"empty text", [](v1::GenerateRequest& r) { r.set_text(""); }, grpc::StatusCode::INVALID_ARGUMENT,
       "INVALID_PROMPT", "prompt"},
      {"empty tokens", [](v1::GenerateRequest& r) { r.mutable_tokens(); }, grpc::StatusCode::INVALID_ARGUMENT,
       "INVALID_PROMPT", "prompt"},
      {"prompt over the limit",
       [](v1::GenerateRequest& r) {
         for (int i = 0; i < 2049; ++i) r.mutable_tokens()->add_ids(5);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "PROMPT_TOO_LONG", "prompt"},
      {"unknown token", [](v1::GenerateRequest& r) { r.mutable_tokens()->add_ids(3), r.mutable_tokens()->add_ids(512); },
       grpc::StatusCode::INVALID_ARGUMENT, "UNKNOWN_TOKEN", "tokens.ids[1]"},
      {"negative token", [](v1::GenerateRequest& r) { r.mutable_tokens()->add_ids(-1); },
       grpc::StatusCode::INVALID_ARGUMENT, "UNKNOWN_TOKEN", "tokens.ids[0]"},
      {"unknown session", [](v1::GenerateRequest& r) { r.set_session_id("no-such-session"); },
       grpc::StatusCode::NOT_FOUND, "SESSION_NOT_FOUND", "session_id"},
      {"malformed session id", [](v1::GenerateRequest& r) { r.set_session_id("bad id/../x"); },
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_SESSION_ID", "session_id"},
      {"negative temperature", [](v1::GenerateRequest& r) { r.mutable_sampling()->set_temperature(-0.5f); },
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_SAMPLING", "sampling.temperature"},
      {"NaN temperature", [](v1::GenerateRequest& r) { r.mutable_sampling()->set_temperature(NAN); },
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_SAMPLING", "sampling.temperature"},
      {"top_p 0", [](v1::GenerateRequest& r) { r.mutable_sampling()->set_top_p(0); },
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_SAMPLING", "sampling.top_p"},
      {"top_p above 1", [](v1::GenerateRequest& r) { r.mutable_sampling()->set_top_p(1.5f); },
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_SAMPLING", "sampling.top_p"},
      {"negative top_k", [](v1::GenerateRequest& r) { r.mutable_sampling()->set_top_k(-1); },
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_SAMPLING", "sampling.top_k"},
      {"min_p above 1", [](v1::GenerateRequest& r) { r.mutable_sampling()->set_min_p(2); },
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_SAMPLING", "sampling.min_p"},
      {"presence penalty", [](v1::GenerateRequest& r) { r.mutable_sampling()->set_presence_penalty(3); },
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_SAMPLING", "sampling.presence_penalty"},
      {"max_tokens 0", [](v1::GenerateRequest& r) { r.set_max_tokens(0); }, grpc::StatusCode::INVALID_ARGUMENT,
       "INVALID_MAX_TOKENS", "max_tokens"},
      {"max_tokens over the limit", [](v1::GenerateRequest& r) { r.set_max_tokens(100001); },
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_MAX_TOKENS", "max_tokens"},
      {"negative logprobs", [](v1::GenerateRequest& r) { r.set_logprobs(-1); }, grpc::StatusCode::INVALID_ARGUMENT,
       "INVALID_LOGPROBS", "logprobs"},
      {"empty stop", [](v1::GenerateRequest& r) { r.add_stop("x"), r.add_stop(""); },
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_STOP", "stop[1]"},
      {"unknown stop token", [](v1::GenerateRequest& r) { r.add_stop_token_ids(100000); },
       grpc::StatusCode::INVALID_ARGUMENT, "UNKNOWN_TOKEN", "stop_token_ids[0]"},
      {"request id with spaces", [](v1::GenerateRequest& r) { r.set_request_id("a b"); },
       grpc::StatusCode::INVALID_ARGUMENT, "INVALID_REQUEST_ID", "request_id"},
  };
  for (const BadInput& c : cases) {
    v1::GenerateRequest request = GreedyText("Hello", 4);
    c.edit(request);
    const Streamed got = f.Generate(request);
    EXPECT_EQ(got.status.error_code(), c.code) << c.name << ": " << got.status.error_message();
    EXPECT_TRUE(got.messages.empty()) << c.name;
    EXPECT_FALSE(got.status.error_message().empty()) << c.name;
    const v1::ErrorInfo info = ErrorInfoOf(got.status);
    EXPECT_EQ(info.reason(), c.reason) << c.name << ": " << got.status.error_message();
    EXPECT_EQ(info.field(), c.field) << c.name << ": " << got.status.error_message();
  }
  EXPECT_EQ(f.Health(), 1);
  const Streamed ok = f.Generate(GreedyText("Hello", 4));
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.ids.size(), 4u);
}

TEST(ServerErrorsTest, MessagesOverTheSizeLimitAreRefused) {
  ServerOptions o = SmallServerOptions();
  o.max_message_bytes = 16 << 10;
  ServerFixture f(o);
  v1::GenerateRequest big = GreedyText(std::string(20000, 'a'), 2);
  const Streamed got = f.Generate(big);
  EXPECT_EQ(got.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << got.status.error_message();
  EXPECT_TRUE(f.Generate(GreedyText("Hello", 2)).status.ok());
}

TEST(ServerErrorsTest, SecondGenerateOnABusySessionIsAbortedNotInterleaved) {
  ServerFixture f;
  v1::CreateSessionRequest create;
  create.set_session_id("busy-one");
  v1::CreateSessionResponse created;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(f.sessions().CreateSession(&context, create, &created).ok());
  }
  v1::GenerateRequest slow = GreedyText("Once upon a time", 100000);
  slow.set_session_id("busy-one");
  slow.set_ignore_eos(true);
  grpc::ClientContext context;
  auto reader = f.inference().Generate(&context, slow);
  v1::GenerateResponse first;
  ASSERT_TRUE(reader->Read(&first));  // the turn is running
  v1::GenerateRequest second = GreedyText("Hi", 2);
  second.set_session_id("busy-one");
  const Streamed refused = f.Generate(second);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::ABORTED);
  const v1::ErrorInfo info = ErrorInfoOf(refused.status);
  EXPECT_EQ(info.reason(), "SESSION_BUSY");
  EXPECT_TRUE(info.has_retry_after());
  // Fork and delete of a busy session are refused too.
  {
    v1::DeleteSessionRequest del;
    del.set_session_id("busy-one");
    v1::DeleteSessionResponse out;
    grpc::ClientContext c;
    EXPECT_EQ(f.sessions().DeleteSession(&c, del, &out).error_code(), grpc::StatusCode::ABORTED);
  }
  context.TryCancel();
  while (reader->Read(&first)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // Freed: the session takes a new turn (once the loop has seen the cancel).
  Streamed again;
  for (int attempt = 0; attempt < 100; ++attempt) {
    again = f.Generate(second);
    if (again.status.error_code() != grpc::StatusCode::ABORTED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(again.status.ok()) << again.status.error_message();
}

class AuthTest : public ::testing::Test {
 protected:
  static ServerOptions WithTokens() {
    const std::string path = ::testing::TempDir() + "/supra_tokens_" + std::to_string(getpid()) + ".txt";
    std::ofstream(path) << "# token tenant\n"
                        << "alice-token-0123456789 alice\n"
                        << "bob-token-0123456789abc bob\n";
    ServerOptions o = SmallServerOptions();
    o.token_file = path;
    return o;
  }
  ServerFixture f_{WithTokens()};
};

TEST_F(AuthTest, MissingOrWrongTokenIsUnauthenticated) {
  for (const std::string token : {"", "wrong-token-0123456789", "alice-token-012345678"}) {
    const Streamed got = f_.Generate(GreedyText("Hello", 2), token);
    EXPECT_EQ(got.status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << "token '" << token << "'";
    EXPECT_EQ(ErrorInfoOf(got.status).reason(), "UNAUTHENTICATED");
  }
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Basic alice-token-0123456789");
  v1::GetModelInfoResponse info;
  EXPECT_EQ(f_.models().GetModelInfo(&context, {}, &info).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(f_.Generate(GreedyText("Hello", 2), "alice-token-0123456789").status.ok());
  EXPECT_EQ(f_.Health(), 1);  // health stays open for probes
}

TEST_F(AuthTest, AnotherTenantsSessionDoesNotExistForYou) {
  v1::GenerateRequest first = GreedyText("Hello", 2);
  first.set_session_id("shared-name");
  first.set_create_session(true);
  const Streamed alice = f_.Generate(first, "alice-token-0123456789");
  ASSERT_TRUE(alice.status.ok()) << alice.status.error_message();
  EXPECT_EQ(alice.final->session_id(), "shared-name");

  v1::GenerateRequest resume = GreedyText(" again", 2);
  resume.set_session_id("shared-name");
  const Streamed bob = f_.Generate(resume, "bob-token-0123456789abc");
  EXPECT_EQ(bob.status.error_code(), grpc::StatusCode::NOT_FOUND);
  // Bob's calls on Alice's session id, each with its own context.
  auto as_bob = [](grpc::ClientContext& context) {
    context.AddMetadata("authorization", "Bearer bob-token-0123456789abc");
    return &context;
  };
  grpc::ClientContext c1, c2, c3, c4;
  v1::GetSessionRequest get;
  get.set_session_id("shared-name");
  v1::GetSessionResponse got;
  EXPECT_EQ(f_.sessions().GetSession(as_bob(c1), get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::ForkSessionRequest fork;
  fork.set_source_session_id("shared-name");
  v1::ForkSessionResponse forked;
  EXPECT_EQ(f_.sessions().ForkSession(as_bob(c2), fork, &forked).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::DeleteSessionRequest del;
  del.set_session_id("shared-name");
  v1::DeleteSessionResponse deleted;
  EXPECT_EQ(f_.sessions().DeleteSession(as_bob(c3), del, &deleted).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::ListSessionsResponse listed;
  ASSERT_TRUE(f_.sessions().ListSessions(as_bob(c4), {}, &listed).ok());
  EXPECT_EQ(listed.sessions_size(), 0);
  // Bob may use the same id for his own session; Alice's is untouched.
  first.set_text("Bonjour");
  const Streamed bobs = f_.Generate(first, "bob-token-0123456789abc");
  EXPECT_TRUE(bobs.status.ok()) << bobs.status.error_message();
  resume.set_expected_session_length(alice.final->session_length());
  EXPECT_TRUE(f_.Generate(resume, "alice-token-0123456789").status.ok());
}

}  // namespace
}  // namespace supra::server::testing

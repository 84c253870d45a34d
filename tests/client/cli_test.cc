// supra-cli run in-process (RunCli) against a scripted fake server on a
// loopback port: what reaches the server, what the user sees, exit codes.
#include "client/cli.h"

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "client/interrupter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/client/fake_server.h"

namespace supra::client {
namespace {

using test::FakeServer;
using test::MakeError;
using ::testing::HasSubstr;
using ::testing::Not;

// Records the text it holds each time the stream is flushed, and calls
// on_flush with it.
class FlushRecorder : public std::stringbuf {
 public:
  std::vector<std::string> snapshots;
  std::function<void(const std::string&)> on_flush;

 protected:
  int sync() override {
    snapshots.push_back(str());
    if (on_flush) on_flush(snapshots.back());
    return 0;
  }
};

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(server_.target().empty()) << "the fake server did not start"; }

  // Runs supra-cli against the fake (a generous --timeout keeps a broken test
  // from hanging) with `stdin_text` on stdin.
  CliResult Run(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), {"--target", server_.target(), "--timeout", "30"});
    return RunRaw(args, stdin_text);
  }

  CliResult RunRaw(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    std::istringstream in(stdin_text);
    std::ostringstream err;
    std::ostream out(&out_buffer_);
    CliResult result;
    result.code = RunCli(args, in, out, err, env_);
    result.out = out_buffer_.str();
    result.err = err.str();
    out_buffer_.str("");
    return result;
  }

  std::string WriteTempFile(const std::string& contents) {
    const std::string path = ::testing::TempDir() + "/supra_cli_test_" +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".txt";
    std::ofstream(path) << contents;
    return path;
  }

  FakeServer server_;
  test::FakeState& state_ = server_.state();
  Interrupter interrupter_;
  Environment env_{.variables = {}, .interrupter = &interrupter_, .stdin_is_terminal = false};
  FlushRecorder out_buffer_;
};

TEST_F(CliTest, GenerateStreamsTextInOrderFlushingEachChunkAndSummarises) {
  const CliResult result = Run({"generate", "--session", "s1", "Hi", "there"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, "Hello world\n");
  // Each chunk was flushed as it arrived, in order.
  EXPECT_THAT(out_buffer_.snapshots, ::testing::IsSupersetOf({"Hel", "Hello", "Hello world"}));
  EXPECT_THAT(result.err, HasSubstr("finish_reason=LENGTH"));
  EXPECT_THAT(result.err, HasSubstr("prompt_tokens=2 resumed_tokens=0 generated_tokens=3"));
  EXPECT_THAT(result.err, HasSubstr("session_id=s1 session_length=5 seed=42"));
  ASSERT_EQ(state_.generate_requests.size(), 1U);
  EXPECT_EQ(state_.generate_requests[0].text(), "Hi there");
}

TEST_F(CliTest, GenerateSummaryNamesTheMatchedStopAndListsLogprobs) {
  state_.edit_final = [](supra::v1::Final* final) {
    final->set_finish_reason(supra::v1::FINISH_REASON_STOP_STRING);
    final->set_stop_string("\n\"x");
  };
  const CliResult result = Run({"generate", "--logprobs", "2", "Hi"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.err, HasSubstr("finish_reason=STOP_STRING stop_string=\"\\n\\\"x\" prompt_tokens=2"));
  // One logprob line per token: id, logprob, then the top alternatives.
  EXPECT_THAT(result.err, HasSubstr("  10 -0.5 [top: 10:-0.5 11:-1.5]\n"));
  EXPECT_THAT(result.err, HasSubstr("  12 -0.5 [top: 12:-0.5 13:-1.5]\n"));

  state_.edit_final = [](supra::v1::Final* final) {
    final->set_finish_reason(supra::v1::FINISH_REASON_STOP_TOKEN);
    final->set_stop_token_id(2);
  };
  EXPECT_THAT(Run({"generate", "Hi"}).err, HasSubstr("finish_reason=STOP_TOKEN stop_token_id=2 "));
}

TEST_F(CliTest, GenerateJsonPrintsEveryResponseAsOneJsonLine) {
  const CliResult result = Run({"--json", "generate", "--seed", "7", "--logprobs", "1", "Hi"});
  ASSERT_EQ(result.code, 0) << result.err;
  const std::vector<std::string> lines = SplitLines(result.out);
  ASSERT_EQ(lines.size(), 4U) << result.out;
  std::string text;
  for (size_t i = 0; i < 3; ++i) {
    const nlohmann::json chunk = nlohmann::json::parse(lines[i]);
    ASSERT_TRUE(chunk.contains("chunk")) << lines[i];
    text += chunk["chunk"]["text"].get<std::string>();
    EXPECT_EQ(chunk["chunk"]["token_ids"], nlohmann::json::array({10 + static_cast<int>(i)}));
    EXPECT_EQ(chunk["chunk"]["logprobs"][0]["top"].size(), 1U);
  }
  EXPECT_EQ(text, "Hello world");
  const nlohmann::json final = nlohmann::json::parse(lines[3]);
  ASSERT_TRUE(final.contains("final")) << lines[3];
  EXPECT_EQ(final["request_id"], "req-1");
  EXPECT_EQ(final["final"]["finish_reason"], "FINISH_REASON_LENGTH");
  EXPECT_EQ(final["final"]["seed"], "7");  // proto3 JSON: 64-bit integers are strings
  EXPECT_EQ(final["final"]["usage"]["generated_tokens"], 3);
  EXPECT_EQ(final["final"]["session_length"], "5");
  EXPECT_EQ(result.err, "");
}

TEST_F(CliTest, GenerateSetsOnlyTheOptionalFieldsGiven) {
  ASSERT_EQ(Run({"generate", "Hi"}).code, 0);
  ASSERT_EQ(Run({"generate", "--temperature", "0", "--top-k", "0", "--max-tokens", "5", "--seed", "0", "Hi"}).code, 0);
  ASSERT_EQ(state_.generate_requests.size(), 2U);

  const supra::v1::GenerateRequest& bare = state_.generate_requests[0];
  EXPECT_FALSE(bare.has_sampling());
  EXPECT_FALSE(bare.has_max_tokens());
  EXPECT_FALSE(bare.has_logprobs());
  EXPECT_FALSE(bare.has_session_id());
  EXPECT_FALSE(bare.has_expected_session_length());
  EXPECT_FALSE(bare.create_session());

  const supra::v1::GenerateRequest& zeros = state_.generate_requests[1];
  ASSERT_TRUE(zeros.sampling().has_temperature());
  EXPECT_EQ(zeros.sampling().temperature(), 0.0F);
  ASSERT_TRUE(zeros.sampling().has_top_k());
  EXPECT_EQ(zeros.sampling().top_k(), 0);
  ASSERT_TRUE(zeros.sampling().has_seed());
  EXPECT_EQ(zeros.sampling().seed(), 0U);
  EXPECT_FALSE(zeros.sampling().has_top_p());
  EXPECT_FALSE(zeros.sampling().has_min_p());
  EXPECT_FALSE(zeros.sampling().has_repetition_penalty());
  EXPECT_FALSE(zeros.sampling().has_presence_penalty());
  EXPECT_FALSE(zeros.sampling().has_frequency_penalty());
  EXPECT_FALSE(zeros.sampling().has_penalty_window());
  ASSERT_TRUE(zeros.has_max_tokens());
  EXPECT_EQ(zeros.max_tokens(), 5);
  EXPECT_FALSE(zeros.has_logprobs());
}

TEST_F(CliTest, GenerateCopiesEveryFlagIntoTheRequest) {
  const CliResult result = Run({"generate",
                                "--session",
                                "s1",
                                "--create-session",
                                "--expected-length",
                                "0",
                                "--top-p",
                                "0.9",
                                "--min-p",
                                "0.05",
                                "--repetition-penalty",
                                "1.1",
                                "--presence-penalty=-0.5",
                                "--frequency-penalty",
                                "0.25",
                                "--penalty-window",
                                "64",
                                "--stop",
                                "END",
                                "--stop",
                                "\n\n",
                                "--stop-token",
                                "7",
                                "--stop-token",
                                "9",
                                "--ignore-eos",
                                "--logprobs",
                                "0",
                                "--request-id",
                                "r-9",
                                "--",
                                "--not-a-flag"});
  ASSERT_EQ(result.code, 0) << result.err;
  ASSERT_EQ(state_.generate_requests.size(), 1U);
  const supra::v1::GenerateRequest& request = state_.generate_requests[0];
  EXPECT_EQ(request.text(), "--not-a-flag");
  EXPECT_EQ(request.session_id(), "s1");
  EXPECT_TRUE(request.create_session());
  ASSERT_TRUE(request.has_expected_session_length());
  EXPECT_EQ(request.expected_session_length(), 0);
  EXPECT_FLOAT_EQ(request.sampling().top_p(), 0.9F);
  EXPECT_FLOAT_EQ(request.sampling().min_p(), 0.05F);
  EXPECT_FLOAT_EQ(request.sampling().repetition_penalty(), 1.1F);
  EXPECT_FLOAT_EQ(request.sampling().presence_penalty(), -0.5F);
  EXPECT_FLOAT_EQ(request.sampling().frequency_penalty(), 0.25F);
  EXPECT_EQ(request.sampling().penalty_window(), 64);
  EXPECT_FALSE(request.sampling().has_temperature());
  EXPECT_THAT(request.stop(), ::testing::ElementsAre("END", "\n\n"));
  EXPECT_THAT(request.stop_token_ids(), ::testing::ElementsAre(7, 9));
  EXPECT_TRUE(request.ignore_eos());
  ASSERT_TRUE(request.has_logprobs());
  EXPECT_EQ(request.logprobs(), 0);
  EXPECT_EQ(request.request_id(), "r-9");
}

TEST_F(CliTest, GeneratePromptFromTokensOrStdin) {
  ASSERT_EQ(Run({"generate", "--tokens", "1, 415,302"}).code, 0);
  ASSERT_EQ(Run({"generate"}, "from stdin\n").code, 0);
  ASSERT_EQ(Run({"generate", "-"}, "line one\nline two\n").code, 0);
  ASSERT_EQ(state_.generate_requests.size(), 3U);
  EXPECT_THAT(state_.generate_requests[0].tokens().ids(), ::testing::ElementsAre(1, 415, 302));
  EXPECT_FALSE(state_.generate_requests[0].has_text());
  EXPECT_EQ(state_.generate_requests[1].text(), "from stdin");
  EXPECT_EQ(state_.generate_requests[2].text(), "line one\nline two");
}

TEST_F(CliTest, TokenFromFileReachesTheServerAsBearer) {
  const std::string path = WriteTempFile("file-secret\n");
  env_.variables["SUPRA_TOKEN"] = "env-secret";  // the file wins over the environment
  ASSERT_EQ(Run({"--token-file", path, "sessions", "get", "s1"}).code, 0);
  ASSERT_EQ(state_.authorizations.size(), 1U);
  EXPECT_EQ(state_.authorizations[0], "Bearer file-secret");
  std::remove(path.c_str());
}

TEST_F(CliTest, TokenFromEnvironmentReachesTheServerAsBearer) {
  env_.variables["SUPRA_TOKEN"] = "env-secret";
  ASSERT_EQ(Run({"generate", "Hi"}).code, 0);
  ASSERT_EQ(Run({"sessions", "list"}).code, 0);
  EXPECT_THAT(state_.authorizations, ::testing::ElementsAre("Bearer env-secret", "Bearer env-secret"));
}

TEST_F(CliTest, NoTokenSendsNoAuthorization) {
  ASSERT_EQ(Run({"info"}).code, 0);
  EXPECT_THAT(state_.authorizations, ::testing::ElementsAre(""));
}

TEST_F(CliTest, TokenOnTheCommandLineIsRefused) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--token", "abc", "info"},
                                               {"info", "--token=abc"},
                                               {"generate", "--token", "x", "Hi"}}) {
    const CliResult result = Run(args);
    EXPECT_EQ(result.code, kExitUsage);
    EXPECT_THAT(result.err, HasSubstr("--token-file"));
    EXPECT_THAT(result.err, HasSubstr("SUPRA_TOKEN"));
    EXPECT_THAT(result.err, HasSubstr("shell history"));
  }
  EXPECT_EQ(state_.calls(), 0);
}

struct CodeCase {
  grpc::StatusCode code;
  const char* name;
  int exit_code;
};

TEST_F(CliTest, EachStatusCodeMapsToItsExitCodeAndPrintsTheErrorInfo) {
  const CodeCase cases[] = {
      {grpc::StatusCode::UNAVAILABLE, "UNAVAILABLE", 3},
      {grpc::StatusCode::DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", 3},
      {grpc::StatusCode::NOT_FOUND, "NOT_FOUND", 4},
      {grpc::StatusCode::ABORTED, "ABORTED", 5},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED", 5},
      {grpc::StatusCode::FAILED_PRECONDITION, "FAILED_PRECONDITION", 6},
      {grpc::StatusCode::UNAUTHENTICATED, "UNAUTHENTICATED", 7},
      {grpc::StatusCode::PERMISSION_DENIED, "PERMISSION_DENIED", 7},
      {grpc::StatusCode::INVALID_ARGUMENT, "INVALID_ARGUMENT", 8},
      {grpc::StatusCode::INTERNAL, "INTERNAL", 1},
      {grpc::StatusCode::DATA_LOSS, "DATA_LOSS", 1},
      {grpc::StatusCode::UNIMPLEMENTED, "UNIMPLEMENTED", 1},
      {grpc::StatusCode::ALREADY_EXISTS, "ALREADY_EXISTS", 1},
  };
  for (const CodeCase& c : cases) {
    SCOPED_TRACE(c.name);
    state_.fail_with = MakeError(c.code, std::string("scripted ") + c.name, std::string("REASON_") + c.name,
                                 "sampling.top_p", {{"actual_length", "12"}});
    const CliResult generate = Run({"generate", "Hi"});
    EXPECT_EQ(generate.code, c.exit_code);
    EXPECT_THAT(generate.err, HasSubstr(std::string(c.name) + ": scripted " + c.name));
    EXPECT_THAT(generate.err, HasSubstr(std::string("reason: REASON_") + c.name));
    EXPECT_THAT(generate.err, HasSubstr("field: sampling.top_p"));
    EXPECT_THAT(generate.err, HasSubstr("actual_length=12"));
    EXPECT_EQ(generate.out, "");
    EXPECT_EQ(Run({"sessions", "get", "s1"}).code, c.exit_code);
    EXPECT_EQ(Run({"info"}).code, c.exit_code);
  }
}

TEST_F(CliTest, ErrorWithoutDetailStillMapsAndPrints) {
  state_.fail_with = grpc::Status(grpc::StatusCode::NOT_FOUND, "plain");
  const CliResult result = Run({"sessions", "delete", "gone"});
  EXPECT_EQ(result.code, kExitNotFound);
  EXPECT_THAT(result.err, HasSubstr("NOT_FOUND: plain"));
  EXPECT_THAT(result.err, Not(HasSubstr("reason:")));
}

TEST_F(CliTest, JsonErrorIsOneObjectOnStderr) {
  state_.fail_with = MakeError(grpc::StatusCode::FAILED_PRECONDITION, "length mismatch", "SESSION_LENGTH_MISMATCH",
                               "expected_session_length", {{"actual_length", "1234"}}, 1500);
  const CliResult result = Run({"--json", "generate", "--session", "s1", "--expected-length", "9", "Hi"});
  EXPECT_EQ(result.code, kExitPrecondition);
  EXPECT_EQ(result.out, "");
  const std::vector<std::string> lines = SplitLines(result.err);
  ASSERT_EQ(lines.size(), 1U) << result.err;
  const nlohmann::json error = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(error["exit_code"], kExitPrecondition);
  EXPECT_EQ(error["error"]["code"], "FAILED_PRECONDITION");
  EXPECT_EQ(error["error"]["code_number"], 9);
  EXPECT_EQ(error["error"]["message"], "length mismatch");
  EXPECT_EQ(error["error"]["reason"], "SESSION_LENGTH_MISMATCH");
  EXPECT_EQ(error["error"]["field"], "expected_session_length");
  EXPECT_EQ(error["error"]["metadata"]["actual_length"], "1234");
  EXPECT_DOUBLE_EQ(error["error"]["retry_after_seconds"].get<double>(), 1.5);
}

TEST_F(CliTest, UnreachableServerExits3) {
  // Port 1 on loopback: nothing listens there, the connection is refused.
  const CliResult result = RunRaw({"--target", "127.0.0.1:1", "--timeout", "30", "info"});
  EXPECT_EQ(result.code, kExitUnavailable);
  EXPECT_THAT(result.err, HasSubstr("UNAVAILABLE"));
  EXPECT_EQ(RunRaw({"--target", "127.0.0.1:1", "health"}).code, kExitUnavailable);
}

TEST_F(CliTest, ExpiredTimeoutExits3) {
  state_.after_first_chunk = [] {};  // the fake streams one chunk, then stalls until the call ends
  const CliResult result = RunRaw({"--target", server_.target(), "--timeout", "0.2", "generate", "Hi"});
  EXPECT_EQ(result.code, kExitUnavailable);
  EXPECT_THAT(result.err, HasSubstr("DEADLINE_EXCEEDED"));
}

TEST_F(CliTest, GlobalFlagsGoAnywhere) {
  ASSERT_EQ(RunRaw({"sessions", "--target", server_.target(), "--json", "get", "s1"}).code, 0);
  const CliResult result = RunRaw({"info", "--target", server_.target(), "--json"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(nlohmann::json::parse(result.out)["model_name"], "tiny-supra");
  EXPECT_EQ(state_.calls(), 2);
}

TEST_F(CliTest, TargetFromTheEnvironment) {
  env_.variables["SUPRA_TARGET"] = server_.target();
  ASSERT_EQ(RunRaw({"info"}).code, 0);
  EXPECT_EQ(state_.calls(), 1);
}

TEST_F(CliTest, ChatRunsOneTurnPerLineOnOneSessionChainingTheLength) {
  const CliResult result = Run({"chat", "--temperature", "0"}, "first line\n\nsecond line\nthird line");
  ASSERT_EQ(result.code, 0) << result.err;
  ASSERT_EQ(state_.generate_requests.size(), 3U);
  const auto& requests = state_.generate_requests;
  EXPECT_EQ(requests[0].text(), "first line");
  EXPECT_TRUE(requests[0].create_session());
  EXPECT_FALSE(requests[0].has_session_id());
  EXPECT_FALSE(requests[0].has_expected_session_length());
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_FALSE(requests[i].create_session());
    EXPECT_EQ(requests[i].session_id(), "chat-1");
    ASSERT_TRUE(requests[i].has_expected_session_length());
    EXPECT_EQ(requests[i].expected_session_length(), static_cast<int64_t>(5 * i));  // each turn adds 2 + 3
    EXPECT_TRUE(requests[i].sampling().has_temperature());
  }
  EXPECT_EQ(requests[1].text(), "second line");
  EXPECT_EQ(requests[2].text(), "third line");
  EXPECT_EQ(result.out, "Hello world\nHello world\nHello world\n");
  // The session id is announced once.
  EXPECT_EQ(result.err, "session: chat-1\n");
}

TEST_F(CliTest, ChatOnAGivenSessionDoesNotCreateIt) {
  const CliResult result = Run({"chat", "--session", "mine"}, "a\nb\n");
  ASSERT_EQ(result.code, 0) << result.err;
  ASSERT_EQ(state_.generate_requests.size(), 2U);
  EXPECT_EQ(state_.generate_requests[0].session_id(), "mine");
  EXPECT_FALSE(state_.generate_requests[0].create_session());
  EXPECT_FALSE(state_.generate_requests[0].has_expected_session_length());
  EXPECT_EQ(state_.generate_requests[1].session_id(), "mine");
  EXPECT_EQ(state_.generate_requests[1].expected_session_length(), 5);
}

TEST_F(CliTest, ChatStopsAtTheFirstFailedTurn) {
  state_.fail_with = MakeError(grpc::StatusCode::ABORTED, "busy", "SESSION_BUSY", "session_id");
  const CliResult result = Run({"chat", "--session", "mine"}, "a\nb\n");
  EXPECT_EQ(result.code, kExitBusy);
  EXPECT_EQ(state_.generate_requests.size(), 1U);
}

TEST_F(CliTest, SessionsCreateSendsIdAndSystemPromptAndPrintsTheId) {
  const CliResult result = Run({"sessions", "create", "--id", "s-7", "--system", "You are terse."});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, "s-7\n");
  ASSERT_EQ(state_.create_requests.size(), 1U);
  EXPECT_EQ(state_.create_requests[0].session_id(), "s-7");
  EXPECT_EQ(state_.create_requests[0].text(), "You are terse.");

  ASSERT_EQ(Run({"sessions", "create"}).code, 0);
  ASSERT_EQ(state_.create_requests.size(), 2U);
  EXPECT_FALSE(state_.create_requests[1].has_session_id());
  EXPECT_EQ(state_.create_requests[1].system_prompt_case(), supra::v1::CreateSessionRequest::SYSTEM_PROMPT_NOT_SET);
}

TEST_F(CliTest, SessionsGetForkDeleteCallTheirRpcWithTheirFields) {
  const CliResult get = Run({"sessions", "get", "s1"});
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_THAT(get.out, HasSubstr("s1\tlength=17\ttier=DEVICE"));
  ASSERT_EQ(state_.get_requests.size(), 1U);
  EXPECT_EQ(state_.get_requests[0].session_id(), "s1");

  const CliResult fork = Run({"sessions", "fork", "s1", "--new-id", "s2", "--expected-length", "17"});
  ASSERT_EQ(fork.code, 0) << fork.err;
  EXPECT_EQ(fork.out, "s2\n");
  ASSERT_EQ(state_.fork_requests.size(), 1U);
  EXPECT_EQ(state_.fork_requests[0].source_session_id(), "s1");
  EXPECT_EQ(state_.fork_requests[0].new_session_id(), "s2");
  ASSERT_TRUE(state_.fork_requests[0].has_expected_length());
  EXPECT_EQ(state_.fork_requests[0].expected_length(), 17);

  ASSERT_EQ(Run({"sessions", "fork", "s1"}).code, 0);
  EXPECT_FALSE(state_.fork_requests[1].has_expected_length());
  EXPECT_FALSE(state_.fork_requests[1].has_new_session_id());

  ASSERT_EQ(Run({"sessions", "delete", "s2", "--expected-length", "0"}).code, 0);
  ASSERT_EQ(Run({"sessions", "delete", "s3"}).code, 0);
  ASSERT_EQ(state_.delete_requests.size(), 2U);
  EXPECT_EQ(state_.delete_requests[0].session_id(), "s2");
  ASSERT_TRUE(state_.delete_requests[0].has_expected_length());
  EXPECT_EQ(state_.delete_requests[0].expected_length(), 0);
  EXPECT_FALSE(state_.delete_requests[1].has_expected_length());
  EXPECT_THAT(state_.methods,
              ::testing::ElementsAre("GetSession", "ForkSession", "ForkSession", "DeleteSession", "DeleteSession"));
}

TEST_F(CliTest, SessionsExportWritesTheSnapshotAndImportSendsItBack) {
  const std::string path = ::testing::TempDir() + "/supra_cli_test_snapshot.bin";
  const CliResult exported = Run({"sessions", "export", "s1", path});
  ASSERT_EQ(exported.code, 0) << exported.err;
  ASSERT_EQ(state_.export_requests.size(), 1U);
  EXPECT_EQ(state_.export_requests[0].session_id(), "s1");
  EXPECT_THAT(exported.err, HasSubstr("15 bytes, length 17"));
  std::ifstream file(path, std::ios::binary);
  std::stringstream contents;
  contents << file.rdbuf();
  EXPECT_EQ(contents.str(), "snap-shot-bytes");

  const CliResult imported = Run({"sessions", "import", path, "--id", "copy"});
  ASSERT_EQ(imported.code, 0) << imported.err;
  EXPECT_EQ(imported.out, "copy\n");
  std::string sent;
  for (const supra::v1::ImportSessionRequest& message : state_.import_messages) sent += message.data();
  EXPECT_EQ(sent, "snap-shot-bytes");
  ASSERT_FALSE(state_.import_messages.empty());
  EXPECT_EQ(state_.import_messages[0].session_id(), "copy");
  for (size_t i = 1; i < state_.import_messages.size(); ++i) EXPECT_FALSE(state_.import_messages[i].has_session_id());
  std::remove(path.c_str());

  // From stdin, without an id.
  const CliResult from_stdin = Run({"sessions", "import", "-"}, "abc");
  ASSERT_EQ(from_stdin.code, 0) << from_stdin.err;
  EXPECT_EQ(from_stdin.out, "imported-1\n");
  EXPECT_EQ(state_.import_messages.back().data(), "abc");
}

TEST_F(CliTest, SessionsExportFailureLeavesNoFile) {
  const std::string path = ::testing::TempDir() + "/supra_cli_test_failed_snapshot.bin";
  state_.fail_with = MakeError(grpc::StatusCode::UNIMPLEMENTED, "later", "NOT_IMPLEMENTED", "");
  EXPECT_EQ(Run({"sessions", "export", "s1", path}).code, kExitRpcFailed);
  EXPECT_FALSE(std::ifstream(path).good());
  EXPECT_FALSE(std::ifstream(path + ".partial").good());
}

TEST_F(CliTest, SessionsJsonPrintsTheResponse) {
  const CliResult result = Run({"--json", "sessions", "get", "s1"});
  ASSERT_EQ(result.code, 0) << result.err;
  const nlohmann::json session = nlohmann::json::parse(result.out);
  EXPECT_EQ(session["session"]["session_id"], "s1");
  EXPECT_EQ(session["session"]["length"], "17");
  EXPECT_EQ(session["session"]["tier"], "SESSION_TIER_DEVICE");
  EXPECT_EQ(session["session"]["busy"], false);
}

TEST_F(CliTest, SessionsListAllFollowsNextPageToken) {
  state_.listed_ids = {"a", "b", "c", "d", "e"};
  const CliResult result = Run({"sessions", "list", "--all"});
  ASSERT_EQ(result.code, 0) << result.err;
  const std::vector<std::string> lines = SplitLines(result.out);
  ASSERT_EQ(lines.size(), 5U) << result.out;
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(lines[i].substr(0, 2), state_.listed_ids[i] + "\t");
  ASSERT_EQ(state_.list_requests.size(), 3U);
  EXPECT_EQ(state_.list_requests[0].page_token(), "");
  EXPECT_EQ(state_.list_requests[1].page_token(), "2");
  EXPECT_EQ(state_.list_requests[2].page_token(), "4");

  const CliResult json = Run({"--json", "sessions", "list", "--all", "--page-size", "3"});
  ASSERT_EQ(json.code, 0) << json.err;
  const nlohmann::json merged = nlohmann::json::parse(json.out);
  EXPECT_EQ(merged["sessions"].size(), 5U);
  EXPECT_EQ(merged["next_page_token"], "");
  EXPECT_EQ(state_.list_requests[3].page_size(), 3);
}

TEST_F(CliTest, SessionsListOnePageReportsTheNextToken) {
  state_.listed_ids = {"a", "b", "c"};
  const CliResult result = Run({"sessions", "list", "--page-token", "1", "--page-size", "1"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(SplitLines(result.out).size(), 1U);
  EXPECT_THAT(result.err, HasSubstr("--page-token 2"));
  ASSERT_EQ(state_.list_requests.size(), 1U);
  EXPECT_EQ(state_.list_requests[0].page_token(), "1");
  EXPECT_EQ(state_.list_requests[0].page_size(), 1);
}

TEST_F(CliTest, TokenizeDetokenizeInfo) {
  const CliResult tokens = Run({"tokenize", "--add-bos", "ab"});
  ASSERT_EQ(tokens.code, 0) << tokens.err;
  EXPECT_EQ(tokens.out, "1,100,101\n");
  ASSERT_EQ(state_.tokenize_requests.size(), 1U);
  EXPECT_TRUE(state_.tokenize_requests[0].add_bos());
  EXPECT_EQ(state_.tokenize_requests[0].text(), "ab");

  const CliResult pieces = Run({"tokenize", "--pieces", "ab"});
  EXPECT_EQ(pieces.out, "100\ta\n101\tb\n");
  EXPECT_FALSE(state_.tokenize_requests[1].add_bos());

  const CliResult text = Run({"detokenize", "1,2,3", "4"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_EQ(text.out, "text of 4 tokens\n");
  EXPECT_THAT(state_.detokenize_requests[0].token_ids(), ::testing::ElementsAre(1, 2, 3, 4));

  const CliResult info = Run({"info"});
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("model_name: tiny-supra\n"));
  EXPECT_THAT(info.out, HasSubstr("limits.max_max_tokens: 4096\n"));
  const CliResult info_json = Run({"--json", "info"});
  EXPECT_EQ(nlohmann::json::parse(info_json.out)["vocab_size"], 512);
}

TEST_F(CliTest, HealthExitsZeroOnlyWhenServing) {
  const CliResult serving = Run({"health"});
  EXPECT_EQ(serving.code, 0) << serving.err;
  EXPECT_EQ(serving.out, "SERVING\n");

  server_.SetServing("supra.v1.InferenceService", false);
  const CliResult not_serving = Run({"--json", "health", "--service", "supra.v1.InferenceService"});
  EXPECT_EQ(not_serving.code, 1);
  const nlohmann::json json = nlohmann::json::parse(not_serving.out);
  EXPECT_EQ(json["status"], "NOT_SERVING");
  EXPECT_EQ(json["service"], "supra.v1.InferenceService");

  const CliResult unknown = Run({"health", "--service", "no.such.Service"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_EQ(unknown.out, "SERVICE_UNKNOWN\n");
}

TEST_F(CliTest, UsageErrorsExit2WithoutContactingTheServer) {
  const std::vector<std::vector<std::string>> cases = {
      {"bogus"},
      {"generate", "--temperature", "warm", "Hi"},
      {"generate", "--temperature", "nan", "Hi"},
      {"generate", "--top-k", "1.5", "Hi"},
      {"generate", "--max-tokens", "99999999999", "Hi"},
      {"generate", "--seed", "-1", "Hi"},
      {"generate", "--tokens", "1,x,3"},
      {"generate", "--tokens", "1,2", "and text"},
      {"generate", "--stop", "", "Hi"},
      {"generate", "--no-such-flag", "Hi"},
      {"generate", "--max-tokens"},
      {"generate", "--ignore-eos=yes", "Hi"},
      {"generate", "--seed", "1", "--seed", "2", "Hi"},
      {"generate"},  // empty stdin: empty prompt
      {"sessions"},
      {"sessions", "rename", "a"},
      {"sessions", "get"},
      {"sessions", "get", "a", "b"},
      {"sessions", "fork", "a", "--expected-length", "ten"},
      {"sessions", "list", "--page-size", "-1"},
      {"sessions", "export", "s1"},
      {"sessions", "import"},
      {"sessions", "import", "/no/such/snapshot"},
      {"detokenize"},
      {"detokenize", "1;2"},
      {"chat", "extra"},
      {"--timeout", "0", "info"},
      {"--timeout", "soon", "info"},
      {"--client-cert", "/dev/null", "info"},
      {"--ca-cert", "/no/such/file", "info"},
      {"--token-file", "/no/such/file", "info"},
      {"-x", "info"},
  };
  for (const std::vector<std::string>& args : cases) {
    const CliResult result = Run(args);
    EXPECT_EQ(result.code, kExitUsage) << ::testing::PrintToString(args) << "\n" << result.err;
    EXPECT_FALSE(result.err.empty()) << ::testing::PrintToString(args);
  }
  const std::string empty_token = WriteTempFile("\n");
  EXPECT_EQ(Run({"--token-file", empty_token, "info"}).code, kExitUsage);
  std::remove(empty_token.c_str());
  EXPECT_EQ(RunRaw({}).code, kExitUsage);
  EXPECT_EQ(state_.calls(), 0);
}

TEST_F(CliTest, HelpExitsZeroAndDocumentsExitCodes) {
  const CliResult tool = RunRaw({"--help"});
  EXPECT_EQ(tool.code, 0);
  for (const char* text : {"generate", "chat", "sessions create", "health", "--token-file", "130", "DEADLINE_EXCEEDED",
                           "FAILED_PRECONDITION", "INVALID_ARGUMENT"}) {
    EXPECT_THAT(tool.out, HasSubstr(text));
  }
  const CliResult generate = RunRaw({"generate", "--help"});
  EXPECT_EQ(generate.code, 0);
  EXPECT_THAT(generate.out, HasSubstr("--temperature X"));
  EXPECT_THAT(generate.out, HasSubstr("--stop STR (repeatable)"));
  const CliResult fork = RunRaw({"sessions", "fork", "--help"});
  EXPECT_EQ(fork.code, 0);
  EXPECT_THAT(fork.out, HasSubstr("--new-id ID"));
  EXPECT_EQ(RunRaw({"help", "sessions", "list"}).code, 0);
  EXPECT_EQ(state_.calls(), 0);
}

// The fake streams one chunk and then waits for the cancellation; the test
// interrupts once the CLI has printed that chunk (as a user pressing Ctrl-C
// after seeing it), so the order is fixed.
TEST_F(CliTest, InterruptWhileStreamingCancelsTheCallAndExits130) {
  state_.after_first_chunk = [] {};
  out_buffer_.on_flush = [this](const std::string& text) {
    if (text == "Hel") interrupter_.Interrupt();
  };
  const CliResult result = Run({"generate", "--session", "s1", "Hi"});
  EXPECT_EQ(result.code, kExitInterrupted) << result.err;
  EXPECT_EQ(result.out, "Hel\n");  // what streamed before the interrupt, then a newline
  EXPECT_THAT(result.err, HasSubstr("interrupted"));
  EXPECT_THAT(result.err, HasSubstr("keeps the text streamed so far"));
}

TEST_F(CliTest, InterruptDuringChatEndsTheLoopWith130) {
  state_.after_first_chunk = [] {};
  out_buffer_.on_flush = [this](const std::string& text) {
    if (text == "Hel") interrupter_.Interrupt();
  };
  const CliResult result = Run({"chat"}, "a\nb\nc\n");
  EXPECT_EQ(result.code, kExitInterrupted) << result.err;
  EXPECT_EQ(result.out, "Hel\n");
  EXPECT_EQ(state_.generate_requests.size(), 1U);
}

TEST_F(CliTest, InterruptBeforeTheCallCancelsItAtOnce) {
  interrupter_.Interrupt();
  const CliResult result = Run({"sessions", "get", "s1"});
  EXPECT_EQ(result.code, kExitInterrupted);
}

std::string TlsFile(const std::string& name) { return std::string(SUPRA_CLIENT_TLS_DIR) + "/" + name; }

std::string ReadTlsFile(const std::string& name) {
  std::ifstream file(TlsFile(name));
  std::stringstream data;
  data << file.rdbuf();
  return data.str();
}

// A fake that requires TLS with a client certificate signed by the test CA.
class CliTlsTest : public ::testing::Test {
 protected:
  static std::shared_ptr<grpc::ServerCredentials> MutualTls() {
    grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = ReadTlsFile("ca.pem");
    options.pem_key_cert_pairs.push_back({ReadTlsFile("server.key"), ReadTlsFile("server.pem")});
    return grpc::SslServerCredentials(options);
  }

  int Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--target", server_.target(), "--timeout", "30"});
    std::istringstream in;
    std::ostringstream out;
    env_.variables["SUPRA_TOKEN"] = "tls-token";
    return RunCli(args, in, out, err_, env_);
  }

  FakeServer server_{MutualTls()};
  Environment env_;
  std::ostringstream err_;
};

TEST_F(CliTlsTest, MutualTlsWithTheFlagsConnects) {
  ASSERT_FALSE(server_.target().empty());
  EXPECT_EQ(Run({"--ca-cert", TlsFile("ca.pem"), "--client-cert", TlsFile("client.pem"), "--client-key",
                 TlsFile("client.key"), "--tls-server-name", "supra.test", "info"}),
            0)
      << err_.str();
  ASSERT_EQ(server_.state().authorizations.size(), 1U);
  EXPECT_EQ(server_.state().authorizations[0], "Bearer tls-token");
}

TEST_F(CliTlsTest, HandshakeFailuresAreUnavailable) {
  // No client certificate: the server refuses the handshake.
  EXPECT_EQ(Run({"--ca-cert", TlsFile("ca.pem"), "--tls-server-name", "supra.test", "info"}), kExitUnavailable);
  // Plaintext to a TLS port.
  EXPECT_EQ(Run({"info"}), kExitUnavailable);
  // The server's certificate does not name the host we asked for.
  EXPECT_EQ(Run({"--ca-cert", TlsFile("ca.pem"), "--client-cert", TlsFile("client.pem"), "--client-key",
                 TlsFile("client.key"), "--tls-server-name", "other.test", "info"}),
            kExitUnavailable);
  EXPECT_EQ(server_.state().calls(), 0);
}

}  // namespace
}  // namespace supra::client

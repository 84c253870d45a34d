// Generate and the session calls, end to end on loopback.
#include <chrono>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "tests/server/server_test_util.h"

namespace supra::server::testing {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  ServerFixture f_;

  std::string Detokenize(const std::vector<int32_t>& ids) {
    v1::DetokenizeRequest request;
    for (int32_t id : ids) request.add_token_ids(id);
    v1::DetokenizeResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(f_.models().Detokenize(&context, request, &response).ok());
    return response.text();
  }
  std::vector<int32_t> Tokenize(const std::string& text, bool add_bos) {
    v1::TokenizeRequest request;
    request.set_text(text);
    request.set_add_bos(add_bos);
    v1::TokenizeResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(f_.models().Tokenize(&context, request, &response).ok());
    return {response.token_ids().begin(), response.token_ids().end()};
  }
  v1::Session CreateSession(const std::string& system = "") {
    v1::CreateSessionRequest request;
    if (!system.empty()) request.set_text(system);
    v1::CreateSessionResponse response;
    grpc::ClientContext context;
    const grpc::Status s = f_.sessions().CreateSession(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.session();
  }
  grpc::Status GetSession(const std::string& id, v1::Session* out) {
    v1::GetSessionRequest request;
    request.set_session_id(id);
    v1::GetSessionResponse response;
    grpc::ClientContext context;
    grpc::Status s = f_.sessions().GetSession(&context, request, &response);
    *out = response.session();
    return s;
  }
};

TEST_F(ServerTest, StreamsChunksThenOneFinalWithTheRequestId) {
  v1::GenerateRequest request = GreedyText("Once upon a time", 12);
  request.set_request_id("req-123");
  request.set_ignore_eos(true);
  const Streamed got = f_.Generate(request);
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  ASSERT_GE(got.messages.size(), 2u);
  for (size_t i = 0; i < got.messages.size(); ++i) {
    EXPECT_EQ(got.messages[i].request_id(), "req-123");
    EXPECT_EQ(got.messages[i].has_final(), i + 1 == got.messages.size()) << "message " << i;
  }
  ASSERT_TRUE(got.final);
  EXPECT_EQ(got.ids.size(), 12u);
  EXPECT_EQ(got.final->usage().generated_tokens(), 12);
  EXPECT_EQ(got.final->finish_reason(), v1::FINISH_REASON_LENGTH);
  const std::vector<int32_t> prompt = Tokenize("Once upon a time", true);
  EXPECT_EQ(got.final->usage().prompt_tokens(), static_cast<int>(prompt.size()));
  EXPECT_EQ(got.final->session_length(), static_cast<int64_t>(prompt.size() + 12));
  EXPECT_TRUE(got.final->session_id().empty());  // stateless
  // Text is the detokenized reply, in the context of the prompt.
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), got.ids.begin(), got.ids.end());
  EXPECT_EQ(got.text, Detokenize(all).substr(Detokenize(prompt).size()));
  // A server-made request id when none is given; the seed is reported.
  const Streamed again = f_.Generate(GreedyText("Once upon a time", 2));
  ASSERT_TRUE(again.final);
  EXPECT_FALSE(again.messages.back().request_id().empty());
}

TEST_F(ServerTest, TextDeltasReassembleIncludingSplitMultiByteCharacters) {
  // Random sampling on the tiny model emits many byte-fallback pieces, so
  // multi-byte characters (and invalid sequences) are split across tokens.
  const v1::Session session = CreateSession("日本語とEnglish: é, ü, ß. ");
  std::vector<int32_t> history = Tokenize("日本語とEnglish: é, ü, ß. ", true);
  for (int turn = 0; turn < 3; ++turn) {
    v1::GenerateRequest request;
    request.set_text(turn == 0 ? "こんにちは" : " and more");
    request.set_session_id(session.session_id());
    request.mutable_sampling()->set_temperature(1.5f);
    request.mutable_sampling()->set_seed(40 + turn);
    request.set_max_tokens(40);
    request.set_ignore_eos(true);
    const Streamed got = f_.Generate(request);
    ASSERT_TRUE(got.status.ok()) << got.status.error_message();
    const std::vector<int32_t> prompt = Tokenize(request.text(), false);
    std::vector<int32_t> before = history;
    before.insert(before.end(), prompt.begin(), prompt.end());
    std::vector<int32_t> after = before;
    after.insert(after.end(), got.ids.begin(), got.ids.end());
    const std::string full = Detokenize(after), prefix = Detokenize(before);
    ASSERT_EQ(full.compare(0, prefix.size(), prefix), 0) << "turn " << turn;
    EXPECT_EQ(got.text, full.substr(prefix.size())) << "turn " << turn;
    history = after;
    EXPECT_EQ(got.final->session_length(), static_cast<int64_t>(history.size()));
  }
}

TEST_F(ServerTest, ResumeOverFiveTurnsEqualsOneStatelessPrompt) {
  // Turn endings: EOS, stop string, max_tokens, stop token, cancel. The
  // first turn's prompt is one whose greedy reply ends with EOS on this
  // backend (the tiny random model's replies differ between the CPU's fp32
  // and the GPU's bf16 weights); the later turns ignore EOS so that their
  // replies are long enough to cut.
  std::string eos_prompt;
  for (const std::string candidate : {"Bonjour", "Hello", "Yes.", "Ich bin", "Thank you", "Good night.", "1 2 3",
                                      "The end.", "Once upon a time", "日本"}) {
    const Streamed probe = f_.Generate(GreedyText(candidate, 60));
    ASSERT_TRUE(probe.status.ok());
    if (probe.final->finish_reason() == v1::FINISH_REASON_EOS && probe.ids.size() >= 2) {
      eos_prompt = candidate;
      break;
    }
  }
  ASSERT_FALSE(eos_prompt.empty()) << "no candidate prompt ends with EOS on this backend";
  const v1::Session session = CreateSession();
  std::vector<int32_t> history;
  const std::vector<std::string> turns = {eos_prompt, " Tell me more.", " Why?", " And then", " Go on"};
  for (int turn = 0; turn < 5; ++turn) {
    std::vector<int32_t> prompt = Tokenize(turns[turn], history.empty());
    std::vector<int32_t> ref_prompt = history;
    ref_prompt.insert(ref_prompt.end(), prompt.begin(), prompt.end());
    v1::GenerateRequest ref_request = GreedyTokens(ref_prompt, 60);
    ref_request.set_ignore_eos(turn > 0);
    const Streamed ref = f_.Generate(ref_request);
    ASSERT_TRUE(ref.status.ok()) << ref.status.error_message();
    ASSERT_GE(ref.ids.size(), turn == 0 ? 2u : 6u) << "turn " << turn;

    v1::GenerateRequest request = GreedyText(turns[turn], 60);
    request.set_ignore_eos(turn > 0);
    request.set_session_id(session.session_id());
    request.set_expected_session_length(static_cast<int64_t>(history.size()));
    if (turn == 1) {
      // The text of reference tokens 3..4 as a stop string.
      std::vector<int32_t> a = history, b = history;
      a.insert(a.end(), prompt.begin(), prompt.end());
      b = a;
      a.insert(a.end(), ref.ids.begin(), ref.ids.begin() + 3);
      b.insert(b.end(), ref.ids.begin(), ref.ids.begin() + 5);
      const std::string stop = Detokenize(b).substr(Detokenize(a).size());
      ASSERT_FALSE(stop.empty());
      request.add_stop(stop);
    } else if (turn == 2) {
      request.set_max_tokens(5);
    } else if (turn == 3) {
      request.add_stop_token_ids(ref.ids[3]);
    }
    Streamed got;
    if (turn == 4) {  // cancel after the first chunk
      grpc::ClientContext context;
      auto reader = f_.inference().Generate(&context, request);
      v1::GenerateResponse response;
      while (got.ids.size() < 3 && reader->Read(&response)) {
        if (response.has_chunk()) {
          got.ids.insert(got.ids.end(), response.chunk().token_ids().begin(), response.chunk().token_ids().end());
        }
      }
      context.TryCancel();
      while (reader->Read(&response)) {
        if (response.has_chunk()) {
          got.ids.insert(got.ids.end(), response.chunk().token_ids().begin(), response.chunk().token_ids().end());
        }
      }
      got.status = reader->Finish();
      EXPECT_EQ(got.status.error_code(), grpc::StatusCode::CANCELLED);
      // The session keeps exactly what the server sent; messages in flight
      // when the client cancelled were sent but not read here, so the
      // session may hold a few more (greedy: the reference's next tokens).
      // The loop sees the cancel at its next iteration: wait until the turn
      // has ended (and an unsent last token has been taken back).
      v1::Session now;
      for (int attempt = 0; attempt < 1000; ++attempt) {
        ASSERT_TRUE(GetSession(session.session_id(), &now).ok());
        if (!now.busy()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      ASSERT_FALSE(now.busy());
      const int64_t sent = now.length() - static_cast<int64_t>(history.size() + prompt.size());
      ASSERT_GE(sent, static_cast<int64_t>(got.ids.size()));
      ASSERT_LE(sent, static_cast<int64_t>(ref.ids.size()));
      EXPECT_EQ(got.ids, std::vector<int32_t>(ref.ids.begin(), ref.ids.begin() + got.ids.size()));
      got.ids.assign(ref.ids.begin(), ref.ids.begin() + sent);
    } else {
      got = f_.Generate(request);
      ASSERT_TRUE(got.status.ok()) << got.status.error_message();
    }
    ASSERT_LE(got.ids.size(), ref.ids.size()) << "turn " << turn;
    EXPECT_EQ(got.ids, std::vector<int32_t>(ref.ids.begin(), ref.ids.begin() + got.ids.size())) << "turn " << turn;
    EXPECT_GE(std::set<int32_t>(got.ids.begin(), got.ids.end()).size(), 2u) << "degenerate, turn " << turn;
    if (turn == 0) {
      EXPECT_EQ(got.final->finish_reason(), v1::FINISH_REASON_EOS);
      EXPECT_EQ(got.ids.back(), 2);
    } else if (turn == 1) {
      EXPECT_EQ(got.final->finish_reason(), v1::FINISH_REASON_STOP_STRING);
      EXPECT_EQ(got.final->stop_string(), request.stop(0));
      EXPECT_EQ(got.ids.size(), 5u);
    } else if (turn == 2) {
      EXPECT_EQ(got.final->finish_reason(), v1::FINISH_REASON_LENGTH);
    } else if (turn == 3) {
      EXPECT_EQ(got.final->finish_reason(), v1::FINISH_REASON_STOP_TOKEN);
      EXPECT_EQ(got.final->stop_token_id(), ref.ids[3]);
    }
    history.insert(history.end(), prompt.begin(), prompt.end());
    history.insert(history.end(), got.ids.begin(), got.ids.end());
    v1::Session now;
    ASSERT_TRUE(GetSession(session.session_id(), &now).ok());
    EXPECT_EQ(now.length(), static_cast<int64_t>(history.size())) << "turn " << turn;
    if (got.final) {
      EXPECT_EQ(got.final->session_length(), now.length());
      EXPECT_EQ(got.final->usage().resumed_tokens(), now.length() - static_cast<int64_t>(prompt.size()) -
                                                         static_cast<int64_t>(got.ids.size()));
    }
  }
}

TEST_F(ServerTest, LogprobsOfTheChosenTokenAndTheTopN) {
  for (const int n : {0, 3}) {
    v1::GenerateRequest request = GreedyText("Once upon a time", 6);
    request.set_ignore_eos(true);
    request.set_logprobs(n);
    const Streamed got = f_.Generate(request);
    ASSERT_TRUE(got.status.ok()) << got.status.error_message();
    int tokens = 0;
    for (const v1::GenerateResponse& m : got.messages) {
      if (!m.has_chunk()) continue;
      ASSERT_EQ(m.chunk().logprobs_size(), m.chunk().token_ids_size());
      for (int i = 0; i < m.chunk().logprobs_size(); ++i, ++tokens) {
        const v1::TokenLogprob& lp = m.chunk().logprobs(i);
        EXPECT_EQ(lp.token_id(), m.chunk().token_ids(i));
        EXPECT_LE(lp.logprob(), 0.0f);
        ASSERT_EQ(lp.top_size(), n);
        for (int k = 1; k < lp.top_size(); ++k) EXPECT_GE(lp.top(k - 1).logprob(), lp.top(k).logprob());
        // Logprobs are of the raw distribution; the penalised greedy choice
        // need not be its argmax, but nothing beats top[0].
        if (n > 0) {
          EXPECT_LE(lp.logprob(), lp.top(0).logprob());
        }
      }
    }
    EXPECT_EQ(tokens, 6);
  }
  // Without the penalty, greedy picks the raw argmax: top[0].
  v1::GenerateRequest plain = GreedyText("Once upon a time", 4);
  plain.mutable_sampling()->clear_repetition_penalty();
  plain.set_ignore_eos(true);
  plain.set_logprobs(2);
  const Streamed got = f_.Generate(plain);
  ASSERT_TRUE(got.status.ok());
  for (const v1::GenerateResponse& m : got.messages) {
    for (const v1::TokenLogprob& lp : m.chunk().logprobs()) {
      ASSERT_EQ(lp.top_size(), 2);
      EXPECT_EQ(lp.top(0).token_id(), lp.token_id());
      EXPECT_FLOAT_EQ(lp.top(0).logprob(), lp.logprob());
    }
  }
}

TEST_F(ServerTest, ForkedBranchesAreIndependentAndTheParentIsUnchanged) {
  const v1::Session parent = CreateSession("Once upon a time");
  v1::ForkSessionRequest fork_request;
  fork_request.set_source_session_id(parent.session_id());
  fork_request.set_expected_length(parent.length());
  v1::ForkSessionResponse a, b;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(f_.sessions().ForkSession(&context, fork_request, &a).ok());
  }
  fork_request.set_new_session_id("branch-b");
  {
    grpc::ClientContext context;
    ASSERT_TRUE(f_.sessions().ForkSession(&context, fork_request, &b).ok());
  }
  EXPECT_EQ(b.session().session_id(), "branch-b");
  EXPECT_EQ(a.session().length(), parent.length());
  // Different continuations on the branches.
  v1::GenerateRequest ra = GreedyText(" there was a king", 8), rb = GreedyText(" in a land far away", 8);
  ra.set_session_id(a.session().session_id());
  rb.set_session_id(b.session().session_id());
  const Streamed ga = f_.Generate(ra), gb = f_.Generate(rb);
  ASSERT_TRUE(ga.status.ok() && gb.status.ok());
  EXPECT_NE(ga.ids, gb.ids);
  // The parent is unchanged: continuing it equals continuing a fresh fork of it.
  v1::GenerateRequest rp = GreedyText(" there was a king", 8);
  rp.set_session_id(parent.session_id());
  rp.set_expected_session_length(parent.length());
  const Streamed gp = f_.Generate(rp);
  ASSERT_TRUE(gp.status.ok()) << gp.status.error_message();
  EXPECT_EQ(gp.ids, ga.ids);
}

TEST_F(ServerTest, DeleteAndListPaging) {
  std::set<std::string> made;
  for (int i = 0; i < 7; ++i) made.insert(CreateSession().session_id());
  std::set<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    v1::ListSessionsRequest request;
    request.set_page_size(3);
    request.set_page_token(token);
    v1::ListSessionsResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(f_.sessions().ListSessions(&context, request, &response).ok());
    EXPECT_LE(response.sessions_size(), 3);
    for (const v1::Session& s : response.sessions()) EXPECT_TRUE(listed.insert(s.session_id()).second);
    token = response.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(listed, made);
  EXPECT_EQ(pages, 3);
  const std::string victim = *made.begin();
  {
    v1::DeleteSessionRequest request;
    request.set_session_id(victim);
    request.set_expected_length(5);  // wrong: refused, kept
    v1::DeleteSessionResponse response;
    grpc::ClientContext context;
    const grpc::Status s = f_.sessions().DeleteSession(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(ErrorInfoOf(s).reason(), "SESSION_LENGTH_MISMATCH");
    EXPECT_EQ(ErrorInfoOf(s).metadata().at("actual_length"), "0");
  }
  {
    v1::DeleteSessionRequest request;
    request.set_session_id(victim);
    request.set_expected_length(0);
    v1::DeleteSessionResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(f_.sessions().DeleteSession(&context, request, &response).ok());
  }
  v1::Session gone;
  const grpc::Status s = GetSession(victim, &gone);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ErrorInfoOf(s).reason(), "SESSION_NOT_FOUND");
}

TEST_F(ServerTest, SessionDescribesItself) {
  const v1::Session s = CreateSession("Hello there");
  EXPECT_EQ(s.length(), static_cast<int64_t>(Tokenize("Hello there", true).size()));
  EXPECT_EQ(s.tier(), v1::SESSION_TIER_DEVICE);
  EXPECT_EQ(s.state_bytes(), f_.server().model().state_bytes());
  EXPECT_FALSE(s.busy());
  EXPECT_GT(s.create_time().seconds(), 1700000000);
}

TEST_F(ServerTest, ModelInfoAndTokenizer) {
  v1::GetModelInfoResponse info;
  grpc::ClientContext context;
  ASSERT_TRUE(f_.models().GetModelInfo(&context, {}, &info).ok());
  EXPECT_EQ(info.model_name(), "mha");
  EXPECT_EQ(info.model_fingerprint(), f_.server().model().fingerprint());
  EXPECT_EQ(info.vocab_size(), 512);
  EXPECT_EQ(info.bos_token_id(), 1);
  EXPECT_EQ(info.eos_token_id(), 2);
  EXPECT_EQ(info.state_bytes_per_session(), f_.server().model().state_bytes());
  EXPECT_EQ(info.limits().max_max_tokens(), 100000);
  EXPECT_EQ(info.limits().max_sessions(), 64);
  EXPECT_EQ(info.api_version(), "supra.v1");
  EXPECT_FALSE(info.server_version().empty());
  const std::vector<int32_t> ids = Tokenize("Hello world", true);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(Detokenize(ids), "Hello world");
  v1::DetokenizeRequest bad;
  bad.add_token_ids(5);
  bad.add_token_ids(512);
  v1::DetokenizeResponse out;
  grpc::ClientContext c2;
  const grpc::Status s = f_.models().Detokenize(&c2, bad, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorInfoOf(s).reason(), "UNKNOWN_TOKEN");
  EXPECT_EQ(ErrorInfoOf(s).field(), "token_ids[1]");
}

}  // namespace
}  // namespace supra::server::testing

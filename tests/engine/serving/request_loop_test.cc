// The request loop and its sessions on a tiny CPU model with two slots, so
// that sessions are evicted to host memory and restored along the way.
#include "engine/serving/request_loop.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "engine/util/error_detail.h"
#include "gtest/gtest.h"

namespace supra {
namespace {

const std::string kData = SUPRA_TEST_DATA_DIR;

// Thread-safe: the loop calls it, the test thread waits on it.
class FakeClock {
 public:
  absl::Time Now() {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

 private:
  std::mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
};

class CollectingSink : public TokenSink {
 public:
  // Runs on the loop's thread after each OnTokens carrying ids.
  std::function<void(int generated)> on_token;

  void OnTokens(absl::Span<const int32_t> ids, std::string_view text, absl::Span<const Logprobs> lp) override {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_FALSE(finished_) << "tokens after finish";
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    text_.append(text);
    logprobs_.insert(logprobs_.end(), lp.begin(), lp.end());
    if (!ids.empty() && on_token) on_token(static_cast<int>(ids_.size()));
  }
  void OnFinish(const FinishInfo& info) override {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_FALSE(finished_) << "finished twice";
    info_ = info;
    finished_ = true;
    cv_.notify_all();
  }
  FinishInfo Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return finished_; });
    return info_;
  }
  std::vector<int32_t> ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }
  std::vector<Logprobs> logprobs() {
    std::lock_guard<std::mutex> lock(mu_);
    return logprobs_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;
  FinishInfo info_;
  std::vector<int32_t> ids_;
  std::string text_;
  std::vector<Logprobs> logprobs_;
};

class RequestLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ModelOptions mo;
    mo.dir = kData + "/models/mha";
    mo.cpu.num_slots = 2;
    mo.cpu.num_threads = 1;
    auto model = Model::Load(mo);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = *std::move(model);
    options_.clock = [this] { return clock_.Now(); };
    options_.prefill_chunk = 5;  // prompts span several iterations
    options_.sessions.max_sessions = 8;
    options_.sessions.idle_ttl = absl::Minutes(10);
  }
  RequestLoop& loop() {
    if (!loop_) loop_ = std::make_unique<RequestLoop>(*model_, options_);
    return *loop_;
  }
  static GenerateRequest Greedy(std::variant<std::string, std::vector<int32_t>> prompt, int32_t max_tokens) {
    GenerateRequest r;
    r.tenant = "t1";
    r.prompt = std::move(prompt);
    r.sampling.temperature = 0;
    r.sampling.repetition_penalty = 1.3f;  // keeps the tiny model's greedy text from looping
    r.max_tokens = max_tokens;
    r.ignore_eos = false;
    return r;
  }
  // Runs a request to its end.
  FinishInfo Run(GenerateRequest r, CollectingSink& sink) {
    const absl::Status s = loop().Submit(std::move(r), &sink);
    EXPECT_TRUE(s.ok()) << s;
    return sink.Wait();
  }
  std::string Decode(const std::vector<int32_t>& ids) { return *model_->tokenizer().Decode(ids); }

  FakeClock clock_;
  RequestLoopOptions options_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<RequestLoop> loop_;
};

TEST_F(RequestLoopTest, StreamsTokensAndTextInOrder) {
  CollectingSink sink;
  const FinishInfo info = Run(Greedy(std::string("Hello world"), 12), sink);
  ASSERT_TRUE(info.status.ok()) << info.status;
  EXPECT_EQ(info.reason, FinishReason::kLength);
  const std::vector<int32_t> ids = sink.ids();
  ASSERT_EQ(ids.size(), 12u);
  EXPECT_GE(std::set<int32_t>(ids.begin(), ids.end()).size(), 4u) << "degenerate continuation";
  std::vector<int32_t> prompt = {model_->bos_id()};
  for (int32_t t : model_->tokenizer().Encode("Hello world")) prompt.push_back(t);
  EXPECT_EQ(info.usage.prompt_tokens, static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(info.usage.generated_tokens, 12);
  EXPECT_TRUE(info.session_id.empty());  // ephemeral
  // Deltas reassemble to decode(history + reply) - decode(history).
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), ids.begin(), ids.end());
  const std::string before = Decode(prompt), after = Decode(all);
  ASSERT_EQ(after.substr(0, before.size()), before);
  EXPECT_EQ(sink.text(), after.substr(before.size()));
}

TEST_F(RequestLoopTest, ReportsLogprobsPerToken) {
  CollectingSink sink, plain;
  GenerateRequest r = Greedy(std::string("Hello"), 6);
  r.top_logprobs = 3;
  ASSERT_TRUE(Run(r, sink).status.ok());
  ASSERT_TRUE(Run(Greedy(std::string("Hello"), 6), plain).status.ok());
  EXPECT_EQ(sink.ids(), plain.ids());  // CPU sampling path == backend sampling path
  const std::vector<Logprobs> lp = sink.logprobs();
  ASSERT_EQ(lp.size(), 6u);
  for (const Logprobs& l : lp) {
    ASSERT_EQ(l.top.size(), 3u);
    EXPECT_LE(l.chosen, 0.0f);
  }
}

// Five turns on one session (ended by max_tokens, a stop string, a stop
// token, a cancel and EOS-or-length) equal, turn by turn, one request with
// the whole history as token ids.
TEST_F(RequestLoopTest, ResumeEqualsWholeHistoryInOnePrompt) {
  auto created = loop().CreateSession("t1", std::string("You are terse."));
  ASSERT_TRUE(created.ok()) << created.status();
  std::vector<int32_t> history = {model_->bos_id()};
  for (int32_t t : model_->tokenizer().Encode("You are terse.")) history.push_back(t);
  EXPECT_EQ(created->length, static_cast<int64_t>(history.size()));

  // Learn the continuation of turn 2 to pick a stop string and a stop token
  // from it, so both really fire.
  const std::vector<std::string> turns = {"One two", "three four", "five", "six seven", "eight"};
  for (int turn = 0; turn < 5; ++turn) {
    std::vector<int32_t> ref_prompt = history;
    for (int32_t t : model_->tokenizer().Encode(turns[turn])) ref_prompt.push_back(t);
    CollectingSink ref_sink;
    ASSERT_TRUE(Run(Greedy(ref_prompt, 10), ref_sink).status.ok());
    const std::vector<int32_t> ref = ref_sink.ids();

    GenerateRequest r = Greedy(turns[turn], 10);
    r.session_id = created->id;
    r.expected_session_length = static_cast<int64_t>(history.size());
    CollectingSink sink;
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    if (turn == 1) {  // stop string: the text of the reference's tokens 3..4
      std::vector<int32_t> head(ref.begin(), ref.begin() + 3), more(ref.begin(), ref.begin() + 5);
      const std::string stop = Decode(more).substr(Decode(head).size());
      ASSERT_FALSE(stop.empty());
      r.stop_strings = {stop};
    } else if (turn == 2) {
      r.stop_token_ids = {ref[4]};
    } else if (turn == 3) {
      r.cancelled = cancelled;
      sink.on_token = [&](int n) {
        if (n == 4) cancelled->store(true);
      };
    }
    const FinishInfo info = Run(r, sink);
    const std::vector<int32_t> got = sink.ids();
    ASSERT_LE(got.size(), ref.size());
    EXPECT_EQ(got, std::vector<int32_t>(ref.begin(), ref.begin() + got.size())) << "turn " << turn;
    if (turn == 0) {
      EXPECT_EQ(info.reason, FinishReason::kLength);
    } else if (turn == 1) {
      EXPECT_EQ(info.reason, FinishReason::kStopString);
      EXPECT_EQ(info.stop_string, r.stop_strings[0]);
    } else if (turn == 2) {
      EXPECT_EQ(info.reason, FinishReason::kStopToken);
    }
    if (turn == 3) {
      EXPECT_EQ(info.reason, FinishReason::kCancelled);
      EXPECT_EQ(info.status.code(), absl::StatusCode::kCancelled);
      EXPECT_EQ(got.size(), 4u);  // atomicity: exactly the tokens sent
    }
    EXPECT_GE(std::set<int32_t>(got.begin(), got.end()).size(), 2u);
    for (int32_t t : model_->tokenizer().Encode(turns[turn])) history.push_back(t);
    history.insert(history.end(), got.begin(), got.end());
    EXPECT_EQ(info.usage.resumed_tokens, static_cast<int64_t>(history.size()) - info.usage.prompt_tokens -
                                             info.usage.generated_tokens)
        << "turn " << turn;  // the session's length before the turn
    EXPECT_EQ(info.session_length, static_cast<int64_t>(history.size())) << "turn " << turn;
  }
}

TEST_F(RequestLoopTest, ForkedBranchesAreIndependent) {
  auto parent = loop().CreateSession("t1", std::string("Once upon a time"));
  ASSERT_TRUE(parent.ok());
  auto fork = loop().ForkSession("t1", parent->id, parent->length);
  ASSERT_TRUE(fork.ok()) << fork.status();
  EXPECT_EQ(fork->length, parent->length);
  EXPECT_NE(fork->id, parent->id);

  auto generate = [&](const std::string& id, const std::string& prompt) {
    GenerateRequest r = Greedy(prompt, 8);
    r.session_id = id;
    CollectingSink sink;
    EXPECT_TRUE(Run(r, sink).status.ok());
    return sink.ids();
  };
  const std::vector<int32_t> a = generate(fork->id, "the king");
  // A second fork of the untouched parent replays the first branch exactly.
  auto fork2 = loop().ForkSession("t1", parent->id, parent->length);
  ASSERT_TRUE(fork2.ok());
  const std::vector<int32_t> b = generate(fork2->id, "a dragon");
  EXPECT_NE(a, b);
  auto parent_now = loop().GetSession("t1", parent->id);
  ASSERT_TRUE(parent_now.ok());
  EXPECT_EQ(parent_now->length, parent->length);
  EXPECT_EQ(generate(parent->id, "the king"), a);
}

TEST_F(RequestLoopTest, SessionErrors) {
  auto s = loop().CreateSession("t1", std::nullopt);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(loop().GetSession("t2", s->id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loop().GetSession("t1", "nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loop().GetSession("t1", "bad id!").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(loop().DeleteSession("t2", s->id, std::nullopt).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loop().DeleteSession("t1", s->id, 5).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(loop().ForkSession("t1", s->id, 5).status().code(), absl::StatusCode::kFailedPrecondition);

  auto run_err = [&](GenerateRequest r) {
    CollectingSink sink;
    const FinishInfo info = Run(std::move(r), sink);
    EXPECT_TRUE(sink.ids().empty());
    EXPECT_EQ(info.reason, FinishReason::kError);
    return info.status.code();
  };
  GenerateRequest r = Greedy(std::string("hi"), 4);
  r.session_id = s->id;
  r.tenant = "t2";
  EXPECT_EQ(run_err(r), absl::StatusCode::kNotFound);
  r.tenant = "t1";
  r.expected_session_length = 3;
  EXPECT_EQ(run_err(r), absl::StatusCode::kFailedPrecondition);
  r.expected_session_length.reset();
  r.max_tokens = 0;
  EXPECT_EQ(run_err(r), absl::StatusCode::kInvalidArgument);
  r.max_tokens = options_.max_tokens_limit + 1;
  EXPECT_EQ(run_err(r), absl::StatusCode::kInvalidArgument);
  r.max_tokens = 4;
  r.prompt = std::vector<int32_t>{1, 100000};
  EXPECT_EQ(run_err(r), absl::StatusCode::kInvalidArgument);
  r.prompt = std::string();
  EXPECT_EQ(run_err(r), absl::StatusCode::kInvalidArgument);  // empty, nothing pending
  r.prompt = std::string("hi");
  r.sampling.temperature = -1;
  EXPECT_EQ(run_err(r), absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(loop().DeleteSession("t1", s->id, 0).ok());
  EXPECT_EQ(loop().GetSession("t1", s->id).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RequestLoopTest, DefaultCapAppliesWhenMaxTokensUnset) {
  options_.default_max_tokens = 7;
  GenerateRequest r = Greedy(std::string("Hello"), 1);
  r.max_tokens.reset();
  CollectingSink sink;
  const FinishInfo info = Run(r, sink);
  EXPECT_EQ(info.reason, FinishReason::kLength);
  EXPECT_EQ(sink.ids().size(), 7u);
}

TEST_F(RequestLoopTest, BusySessionIsAborted) {
  auto s = loop().CreateSession("t1", std::nullopt);
  ASSERT_TRUE(s.ok());
  GenerateRequest first = Greedy(std::string("Hello"), 50);
  first.session_id = s->id;
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  first.cancelled = cancelled;
  CollectingSink sink1, sink2;
  GenerateRequest second = Greedy(std::string("Hi"), 4);
  second.session_id = s->id;
  // The second arrives while the first is generating (from the loop's
  // thread, so the timing is fixed), then the first is cancelled.
  sink1.on_token = [&](int n) {
    if (n == 2) {
      EXPECT_TRUE(loop_->Submit(second, &sink2).ok());
    } else if (n == 5) {
      cancelled->store(true);
    }
  };
  ASSERT_TRUE(loop().Submit(first, &sink1).ok());
  const FinishInfo info2 = sink2.Wait();
  EXPECT_EQ(info2.status.code(), absl::StatusCode::kAborted);
  const FinishInfo info1 = sink1.Wait();
  EXPECT_EQ(info1.reason, FinishReason::kCancelled);
  EXPECT_EQ(info1.session_length, info1.usage.prompt_tokens + static_cast<int64_t>(sink1.ids().size()));
}

TEST_F(RequestLoopTest, DeadlineEndsRequestKeepingSentTokens) {
  GenerateRequest r = Greedy(std::string("Hello"), 50);
  r.deadline = clock_.Now() + absl::Seconds(5);
  CollectingSink sink;
  sink.on_token = [&](int n) {
    if (n == 3) clock_.Advance(absl::Seconds(10));
  };
  const FinishInfo info = Run(r, sink);
  EXPECT_EQ(info.reason, FinishReason::kDeadline);
  EXPECT_EQ(info.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(sink.ids().size(), 3u);
  EXPECT_EQ(info.session_length, info.usage.prompt_tokens + 3);
}

TEST_F(RequestLoopTest, ManyConcurrentRequestsShareTwoSlots) {
  // Four sessions on two slots: evictions to host happen, outputs must not change.
  std::vector<std::vector<int32_t>> alone;
  const std::vector<std::string> prompts = {"alpha", "beta gamma", "delta", "epsilon zeta eta"};
  for (const std::string& p : prompts) {
    CollectingSink sink;
    ASSERT_TRUE(Run(Greedy(p, 9), sink).status.ok());
    alone.push_back(sink.ids());
  }
  std::vector<std::string> ids;
  for (size_t i = 0; i < prompts.size(); ++i) ids.push_back(loop().CreateSession("t1", std::nullopt)->id);
  std::vector<CollectingSink> sinks(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerateRequest r = Greedy(prompts[i], 9);
    r.session_id = ids[i];
    ASSERT_TRUE(loop().Submit(r, &sinks[i]).ok());
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_TRUE(sinks[i].Wait().status.ok());
    EXPECT_EQ(sinks[i].ids(), alone[i]) << prompts[i];
  }
}

TEST_F(RequestLoopTest, PrefillTokenBudgetSharesIterationsWithoutChangingResults) {
  // Three prompt tokens per iteration for everyone together (the chunk is 5):
  // long prompts take many iterations and interleave with decodes.
  options_.prefill_token_budget = 3;
  const std::vector<std::string> prompts = {"Once upon a time there was a king", "alpha beta gamma delta",
                                            "The quick brown fox jumps over the lazy dog"};
  std::vector<std::vector<int32_t>> alone;
  for (const std::string& p : prompts) {
    CollectingSink sink;
    ASSERT_TRUE(Run(Greedy(p, 6), sink).status.ok());
    alone.push_back(sink.ids());
  }
  std::vector<CollectingSink> sinks(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) ASSERT_TRUE(loop().Submit(Greedy(prompts[i], 6), &sinks[i]).ok());
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_TRUE(sinks[i].Wait().status.ok());
    EXPECT_EQ(sinks[i].ids(), alone[i]) << prompts[i];
  }
}

TEST_F(RequestLoopTest, ListPagesInStableOrder) {
  std::set<std::string> created;
  for (int i = 0; i < 5; ++i) created.insert(loop().CreateSession("t1", std::nullopt)->id);
  ASSERT_TRUE(loop().CreateSession("t2", std::nullopt).ok());
  std::vector<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    auto page = loop().ListSessions("t1", 2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const SessionInfo& s : page->sessions) listed.push_back(s.id);
    token = page->next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), created);
  EXPECT_TRUE(std::is_sorted(listed.begin(), listed.end()));
  EXPECT_EQ(loop().ListSessions("t1", 2, "garbage!").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RequestLoopTest, SessionLimitAndIdleTtl) {
  options_.sessions.max_sessions = 2;
  options_.sweep_interval = absl::Hours(1000);  // only the explicit sweep below runs
  auto a = loop().CreateSession("t1", std::nullopt);
  ASSERT_TRUE(a.ok());
  clock_.Advance(absl::Minutes(6));
  auto b = loop().CreateSession("t1", std::nullopt);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(loop().CreateSession("t1", std::nullopt).status().code(), absl::StatusCode::kResourceExhausted);
  clock_.Advance(absl::Minutes(6));  // a idle 12 min, b 6 min
  EXPECT_EQ(loop().GetSession("t1", a->id).status().code(), absl::StatusCode::kNotFound);  // lazy
  EXPECT_TRUE(loop().GetSession("t1", b->id).ok());  // and touches nothing: Get does not count as use
  clock_.Advance(absl::Minutes(5));
  EXPECT_EQ(loop().SweepExpiredSessions(), 1);
  EXPECT_TRUE(loop().CreateSession("t1", std::nullopt).ok());
}

TEST_F(RequestLoopTest, DrainFinishesThenRefuses) {
  GenerateRequest r = Greedy(std::string("Hello"), 6);
  CollectingSink sink;
  ASSERT_TRUE(loop().Submit(r, &sink).ok());
  loop().Drain(absl::Seconds(30));
  EXPECT_EQ(sink.Wait().reason, FinishReason::kLength);  // finished, not cut
  CollectingSink late;
  EXPECT_EQ(loop().Submit(r, &late).code(), absl::StatusCode::kUnavailable);
}

TEST_F(RequestLoopTest, DrainCancelsAfterTimeout) {
  options_.default_max_tokens = 1000000;
  options_.max_tokens_limit = 1000000;
  GenerateRequest r = Greedy(std::string("Hello"), 1000000);
  r.ignore_eos = true;  // the tiny model does sample EOS now and then
  CollectingSink sink;
  ASSERT_TRUE(loop().Submit(r, &sink).ok());
  loop().Drain(absl::Milliseconds(50));
  const FinishInfo info = sink.Wait();
  EXPECT_EQ(info.reason, FinishReason::kCancelled);
  EXPECT_EQ(info.session_length, info.usage.prompt_tokens + static_cast<int64_t>(sink.ids().size()));
}

TEST_F(RequestLoopTest, QueueLimit) {
  options_.max_queued = 1;
  // Block the loop inside a sink callback so the queue cannot empty.
  std::mutex mu;
  std::condition_variable cv;
  bool release = false, entered = false;
  CollectingSink blocker, queued, refused;
  blocker.on_token = [&](int n) {
    if (n != 1) return;
    std::unique_lock<std::mutex> lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  ASSERT_TRUE(loop().Submit(Greedy(std::string("a"), 2), &blocker).ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  ASSERT_TRUE(loop().Submit(Greedy(std::string("b"), 2), &queued).ok());
  EXPECT_EQ(loop().Submit(Greedy(std::string("c"), 2), &refused).code(), absl::StatusCode::kResourceExhausted);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(blocker.Wait().status.ok());
  EXPECT_TRUE(queued.Wait().status.ok());
}

// A sink that hands tokens on only when the test says so, like a gRPC stream
// whose reader is slow: the loop must not feed an unsent token, and an
// interrupted turn must drop it.
class GatedSink : public CollectingSink {
 public:
  bool Ready() override { return unsent_.load() == 0; }
  int Retract() override { return unsent_.exchange(0); }
  void OnTokens(absl::Span<const int32_t> ids, std::string_view text, absl::Span<const Logprobs> lp) override {
    if (!ids.empty() && hold_.load()) unsent_.fetch_add(static_cast<int>(ids.size()));
    CollectingSink::OnTokens(ids, text, lp);
  }
  std::atomic<bool> hold_{false};
  std::atomic<int> unsent_{0};
};

TEST_F(RequestLoopTest, SlowReaderHoldsOnlyItsOwnRequestAndCancelDropsTheUnsentToken) {
  auto s = loop().CreateSession("t1", std::nullopt);
  ASSERT_TRUE(s.ok()) << s.status();
  GatedSink slow;
  slow.hold_ = true;  // the first sampled token is never handed on
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  GenerateRequest r = Greedy(std::string("Once upon a time"), 50);
  r.session_id = s->id;
  r.cancelled = cancelled;
  ASSERT_TRUE(loop().Submit(std::move(r), &slow).ok());
  // Another request runs to completion while the slow one waits.
  CollectingSink other;
  EXPECT_TRUE(Run(Greedy(std::string("There was"), 8), other).status.ok());
  EXPECT_EQ(other.ids().size(), 8u);
  EXPECT_EQ(slow.ids().size(), 1u);  // sampled once, then held back
  cancelled->store(true);
  const FinishInfo info = slow.Wait();
  EXPECT_EQ(info.reason, FinishReason::kCancelled);
  EXPECT_EQ(info.usage.generated_tokens, 0);
  // The session holds the prompt only: the unsent token was retracted.
  auto after = loop().GetSession("t1", s->id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->length, info.usage.prompt_tokens);
  EXPECT_EQ(info.session_length, after->length);
}

TEST_F(RequestLoopTest, CreateSessionInGenerateAndClientChosenIds) {
  GenerateRequest r = Greedy(std::string("Hello"), 3);
  r.session_id = "chat-42";
  r.create_session = true;
  CollectingSink first;
  const FinishInfo info = Run(r, first);
  ASSERT_TRUE(info.status.ok()) << info.status;
  EXPECT_EQ(info.session_id, "chat-42");
  // Now it exists: create_session continues it.
  CollectingSink second;
  r.expected_session_length = info.session_length;
  const FinishInfo again = Run(r, second);
  ASSERT_TRUE(again.status.ok()) << again.status;
  EXPECT_EQ(again.usage.resumed_tokens, info.session_length);
  // A client-chosen id in use: ALREADY_EXISTS with its reason; other tenants may use it.
  NewSession spec;
  spec.id = "chat-42";
  const absl::StatusOr<SessionInfo> dup = loop().CreateSession("t1", spec);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(GetErrorDetail(dup.status()));
  EXPECT_EQ(GetErrorDetail(dup.status())->reason, "SESSION_EXISTS");
  EXPECT_TRUE(loop().CreateSession("t2", spec).ok());
  // Without an id, create_session makes a named session with a fresh id.
  GenerateRequest anon = Greedy(std::string("Hi"), 2);
  anon.create_session = true;
  CollectingSink third;
  const FinishInfo made = Run(anon, third);
  ASSERT_TRUE(made.status.ok());
  EXPECT_FALSE(made.session_id.empty());
  EXPECT_TRUE(loop().GetSession("t1", made.session_id).ok());
  // A refused turn on a session it just created leaves nothing behind.
  GenerateRequest bad = Greedy(std::string(""), 2);
  bad.session_id = "never-made";
  bad.create_session = true;
  CollectingSink fourth;
  const FinishInfo refused = Run(bad, fourth);
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(loop().GetSession("t1", "never-made").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RequestLoopTest, ErrorsCarryReasonAndField) {
  struct Case {
    std::function<void(GenerateRequest&)> edit;
    absl::StatusCode code;
    std::string reason, field;
  };
  const std::vector<Case> cases = {
      {[](GenerateRequest& r) { r.sampling.top_p = 0; }, absl::StatusCode::kInvalidArgument, "INVALID_SAMPLING",
       "sampling.top_p"},
      {[](GenerateRequest& r) { r.sampling.temperature = -1; }, absl::StatusCode::kInvalidArgument,
       "INVALID_SAMPLING", "sampling.temperature"},
      {[](GenerateRequest& r) { r.max_tokens = 0; }, absl::StatusCode::kInvalidArgument, "INVALID_MAX_TOKENS",
       "max_tokens"},
      {[](GenerateRequest& r) { r.prompt = std::vector<int32_t>{1, 5, 1 << 20}; },
       absl::StatusCode::kInvalidArgument, "UNKNOWN_TOKEN", "tokens.ids[2]"},
      {[](GenerateRequest& r) { r.prompt = std::string(); }, absl::StatusCode::kInvalidArgument, "INVALID_PROMPT",
       "prompt"},
      {[](GenerateRequest& r) { r.session_id = "bad id!"; }, absl::StatusCode::kInvalidArgument,
       "INVALID_SESSION_ID", "session_id"},
      {[](GenerateRequest& r) { r.session_id = "unknown"; }, absl::StatusCode::kNotFound, "SESSION_NOT_FOUND",
       "session_id"},
      {[](GenerateRequest& r) { r.stop_strings = {"a", ""}; }, absl::StatusCode::kInvalidArgument, "INVALID_STOP",
       "stop[1]"},
      {[](GenerateRequest& r) { r.top_logprobs = -1; }, absl::StatusCode::kInvalidArgument, "INVALID_LOGPROBS",
       "logprobs"},
  };
  for (const Case& c : cases) {
    GenerateRequest r = Greedy(std::string("Hello"), 2);
    c.edit(r);
    CollectingSink sink;
    const FinishInfo info = Run(r, sink);
    EXPECT_EQ(info.status.code(), c.code) << c.reason << ": " << info.status;
    const std::optional<ErrorDetail> detail = GetErrorDetail(info.status);
    ASSERT_TRUE(detail) << info.status;
    EXPECT_EQ(detail->reason, c.reason) << info.status;
    EXPECT_EQ(detail->field, c.field) << info.status;
  }
  auto s = loop().CreateSession("t1", std::nullopt);
  GenerateRequest r = Greedy(std::string("Hello"), 2);
  r.session_id = s->id;
  r.expected_session_length = 7;
  CollectingSink sink;
  const FinishInfo info = Run(r, sink);
  EXPECT_EQ(info.status.code(), absl::StatusCode::kFailedPrecondition);
  const std::optional<ErrorDetail> detail = GetErrorDetail(info.status);
  ASSERT_TRUE(detail);
  EXPECT_EQ(detail->reason, "SESSION_LENGTH_MISMATCH");
  EXPECT_NE(std::find(detail->metadata.begin(), detail->metadata.end(),
                      std::pair<std::string, std::string>("actual_length", "0")),
            detail->metadata.end());
}

TEST_F(RequestLoopTest, AsyncSessionCallsAnswerOnTheLoop) {
  std::promise<absl::StatusOr<SessionInfo>> made;
  loop().CreateSessionAsync("t1", NewSession{std::string("s1"), std::string("Hi")},
                            [&](absl::StatusOr<SessionInfo> r) { made.set_value(std::move(r)); });
  const absl::StatusOr<SessionInfo> info = made.get_future().get();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id, "s1");
  EXPECT_GT(info->length, 1);
  std::promise<absl::StatusOr<bool>> deleted;
  loop().DeleteSessionAsync("t1", "s1", info->length, [&](absl::StatusOr<bool> r) { deleted.set_value(r); });
  EXPECT_TRUE(deleted.get_future().get().ok());
}

}  // namespace
}  // namespace supra

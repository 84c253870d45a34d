#include "engine/serving/request_loop.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/serving/stop_matcher.h"
#include "engine/tokenizer/incremental_decoder.h"
#include "engine/util/absl_compat.h"
#include "engine/util/error_detail.h"
#include "engine/util/status_macros.h"

namespace supra {

struct ActiveRequest {
  ActiveRequest(GenerateRequest req, TokenSink* s)
      : request(std::move(req)), sink(s), stops(request.stop_strings) {}

  GenerateRequest request;
  TokenSink* sink;
  Session* session = nullptr;
  bool started = false;  // holds a slot; no longer counts as queued
  bool created_session = false;  // this request created its named session
  bool done = false;
  int32_t max_tokens = 0;
  int32_t generated = 0;  // also the draw counter of the next sample
  Usage usage;
  std::optional<IncrementalDecoder> decoder;
  StopMatcher stops;
};

namespace {

RequestLimits LimitsFor(const Model& model, const RequestLoopOptions& o) {
  RequestLimits limits;
  limits.vocab_size = model.config().vocab_size;
  limits.max_tokens_limit = o.max_tokens_limit;
  limits.max_prompt_tokens = o.max_prompt_tokens;
  limits.max_top_logprobs = o.max_top_logprobs;
  limits.history_tail_tokens = o.sessions.history_tail_tokens;
  return limits;
}

Clock ClockOrNow(Clock clock) {
  if (clock) return clock;
  return [] { return absl::Now(); };
}

}  // namespace

RequestLoop::RequestLoop(Model& model, RequestLoopOptions options)
    : model_(model),
      options_(std::move(options)),
      limits_(LimitsFor(model, options_)),
      clock_(ClockOrNow(options_.clock)),
      sessions_(model.backend(), options_.sessions, clock_),
      last_sweep_(clock_()),
      thread_([this] { Run(); }) {}

RequestLoop::~RequestLoop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  // Tasks posted after the loop's last iteration: tell them it stopped.
  std::vector<std::function<void(bool)>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(tasks_);
  }
  for (auto& task : left) task(false);
}

void RequestLoop::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

int RequestLoop::in_flight() {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

absl::Status RequestLoop::Submit(GenerateRequest request, TokenSink* sink) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_ || stop_) {
      return WithErrorDetail(absl::UnavailableError("server is draining; retry on another replica"),
                             {"DRAINING", "", {}, absl::Seconds(1)});
    }
    if (queued_ >= options_.max_queued) {
      return WithErrorDetail(
          absl::ResourceExhaustedError(absl::StrCat("request queue is full (", options_.max_queued,
                                                    " waiting); retry later")),
          {"OVERLOADED", "", {{"limit", std::to_string(options_.max_queued)}}, absl::Milliseconds(500)});
    }
    ++queued_;
    ++in_flight_;
    queue_.push_back({std::move(request), sink});
  }
  cv_.notify_all();
  return absl::OkStatus();
}

void RequestLoop::Drain(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  draining_ = true;
  idle_cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [this] { return in_flight_ == 0; });
  if (in_flight_ == 0) return;
  cancel_all_ = true;
  cv_.notify_all();
  idle_cv_.wait(lock, [this] { return in_flight_ == 0; });
}

void RequestLoop::Post(std::function<void(bool)> task) {
  bool stopped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped = stop_;
    if (!stopped) tasks_.push_back(std::move(task));
  }
  if (stopped) {
    task(false);
    return;
  }
  cv_.notify_all();
}

namespace {

absl::Status LoopStopped() {
  return WithErrorDetail(absl::UnavailableError("server is shutting down"), {"DRAINING", "", {}, absl::Seconds(1)});
}

// Runs an asynchronous operation and waits for its result.
template <typename T, typename Start>
absl::StatusOr<T> Wait(Start start) {
  std::promise<absl::StatusOr<T>> promise;
  start([&](absl::StatusOr<T> result) { promise.set_value(std::move(result)); });
  return promise.get_future().get();
}

}  // namespace

absl::StatusOr<SessionInfo> RequestLoop::CreateSessionNow(const std::string& tenant, NewSession spec) {
  std::vector<int32_t> tokens;
  if (spec.system_prompt) {
    if (const auto* text = std::get_if<std::string>(&*spec.system_prompt)) {
      tokens.push_back(model_.bos_id());
      const std::vector<int32_t> ids = model_.tokenizer().Encode(*text);
      tokens.insert(tokens.end(), ids.begin(), ids.end());
    } else {
      tokens = std::get<std::vector<int32_t>>(*spec.system_prompt);
      for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] >= limits_.vocab_size) {
          return MakeError(absl::StatusCode::kInvalidArgument,
                           absl::StrCat("tokens.ids[", i, "]: unknown token id ", tokens[i], " (vocabulary size ",
                                        limits_.vocab_size, ")"),
                           "UNKNOWN_TOKEN", absl::StrCat("tokens.ids[", i, "]"));
        }
      }
    }
    if (static_cast<int64_t>(tokens.size()) > limits_.max_prompt_tokens) {
      return MakeError(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("system prompt has ", tokens.size(), " tokens, more than the limit ",
                                    limits_.max_prompt_tokens),
                       "PROMPT_TOO_LONG", "system_prompt");
    }
  }
  ASSIGN_OR_RETURN(Session * session, sessions_.Create(tenant, /*ephemeral=*/false, std::move(spec.id)));
  session->pending = tokens;
  sessions_.AppendHistory(*session, tokens);
  if (absl::Status s = ConsumeNow(*session); !s.ok()) {
    sessions_.Remove(*session);
    return s;
  }
  return sessions_.Info(*session);
}

void RequestLoop::CreateSessionAsync(const std::string& tenant, NewSession spec, Done<SessionInfo> done) {
  Post([this, tenant, spec = std::move(spec), done = std::move(done)](bool running) mutable {
    done(running ? CreateSessionNow(tenant, std::move(spec)) : LoopStopped());
  });
}

void RequestLoop::GetSessionAsync(const std::string& tenant, const std::string& id, Done<SessionInfo> done) {
  Post([this, tenant, id, done = std::move(done)](bool running) {
    if (!running) return done(LoopStopped());
    absl::StatusOr<Session*> s = sessions_.Find(tenant, id);
    done(s.ok() ? absl::StatusOr<SessionInfo>(sessions_.Info(**s)) : s.status());
  });
}

void RequestLoop::ListSessionsAsync(const std::string& tenant, int page_size, const std::string& page_token,
                                    Done<SessionPage> done) {
  Post([this, tenant, page_size, page_token, done = std::move(done)](bool running) {
    done(running ? sessions_.List(tenant, page_size, page_token) : LoopStopped());
  });
}

void RequestLoop::ForkSessionAsync(const std::string& tenant, const std::string& id,
                                   std::optional<int64_t> expected_length, std::optional<std::string> new_id,
                                   Done<SessionInfo> done) {
  Post([this, tenant, id, expected_length, new_id = std::move(new_id), done = std::move(done)](bool running) {
    if (!running) return done(LoopStopped());
    absl::StatusOr<Session*> s = sessions_.Fork(tenant, id, expected_length, new_id);
    done(s.ok() ? absl::StatusOr<SessionInfo>(sessions_.Info(**s)) : s.status());
  });
}

void RequestLoop::DeleteSessionAsync(const std::string& tenant, const std::string& id,
                                     std::optional<int64_t> expected_length, Done<bool> done) {
  Post([this, tenant, id, expected_length, done = std::move(done)](bool running) {
    if (!running) return done(LoopStopped());
    const absl::Status s = sessions_.Delete(tenant, id, expected_length);
    done(s.ok() ? absl::StatusOr<bool>(true) : s);
  });
}

absl::StatusOr<SessionInfo> RequestLoop::CreateSession(const std::string& tenant, NewSession spec) {
  return Wait<SessionInfo>([&](Done<SessionInfo> done) { CreateSessionAsync(tenant, std::move(spec), done); });
}

absl::StatusOr<SessionInfo> RequestLoop::CreateSession(const std::string& tenant,
                                                       std::optional<std::string> system_prompt) {
  NewSession spec;
  if (system_prompt) spec.system_prompt = *std::move(system_prompt);
  return CreateSession(tenant, std::move(spec));
}

absl::Status RequestLoop::ConsumeNow(Session& session) {
  if (session.pending.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const bool resident, sessions_.MakeResident(session));
  // Every slot is generating: the tokens stay pending and are fed on first
  // use, which gives the same state.
  if (!resident) return absl::OkStatus();
  logits_.resize(model_.config().vocab_size);
  const PrefillSequence seq{session.slot, session.pending, session.next_position};
  RETURN_IF_ERROR(model_.backend().Prefill(absl::MakeConstSpan(&seq, 1), options_.prefill_chunk,
                                           LogitsOutput::kLastOnly, absl::MakeSpan(logits_)));
  session.next_position += static_cast<int64_t>(session.pending.size());
  session.pending.clear();
  return absl::OkStatus();
}

absl::StatusOr<SessionInfo> RequestLoop::GetSession(const std::string& tenant, const std::string& id) {
  return Wait<SessionInfo>([&](Done<SessionInfo> done) { GetSessionAsync(tenant, id, done); });
}

absl::StatusOr<SessionPage> RequestLoop::ListSessions(const std::string& tenant, int page_size,
                                                      const std::string& page_token) {
  return Wait<SessionPage>([&](Done<SessionPage> done) { ListSessionsAsync(tenant, page_size, page_token, done); });
}

absl::StatusOr<SessionInfo> RequestLoop::ForkSession(const std::string& tenant, const std::string& id,
                                                     std::optional<int64_t> expected_length,
                                                     std::optional<std::string> new_id) {
  return Wait<SessionInfo>(
      [&](Done<SessionInfo> done) { ForkSessionAsync(tenant, id, expected_length, std::move(new_id), done); });
}

absl::Status RequestLoop::DeleteSession(const std::string& tenant, const std::string& id,
                                        std::optional<int64_t> expected_length) {
  return Wait<bool>([&](Done<bool> done) { DeleteSessionAsync(tenant, id, expected_length, done); }).status();
}

int RequestLoop::SweepExpiredSessions() {
  absl::StatusOr<int> removed = Wait<int>([&](Done<int> done) {
    Post([this, done](bool running) { done(running ? absl::StatusOr<int>(sessions_.SweepExpired()) : 0); });
  });
  return removed.ok() ? *removed : 0;
}

void RequestLoop::Run() {
  bool idle = false;  // the last iteration ran no model step
  while (true) {
    std::deque<Submitted> incoming;
    std::vector<std::function<void(bool)>> tasks;
    bool cancel_all = false;
    bool stop = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto has_news = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || wake_ || !queue_.empty() || !tasks_.empty();
      };
      if (active_.empty()) {
        cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.sweep_interval), has_news);
      } else if (idle) {
        // Every active request waits (for a slot or a slow reader): sleep
        // until something changes, checking deadlines every few ms.
        cv_.wait_for(lock, std::chrono::milliseconds(5), has_news);
      }
      wake_ = false;
      incoming.swap(queue_);
      tasks.swap(tasks_);
      cancel_all = cancel_all_;
      stop = stop_;
    }
    for (auto& task : tasks) task(true);
    for (Submitted& s : incoming) Admit(std::move(s));
    if (cancel_all || stop) {
      for (auto& r : active_) Finish(*r, FinishReason::kCancelled, absl::CancelledError("server is shutting down"));
    } else {
      CheckInterrupts();
    }
    RemoveFinished();
    if (stop) break;
    AssignSlots();
    const bool prefilled = PrefillStep();
    RemoveFinished();
    const bool decoded = DecodeStep();
    RemoveFinished();
    idle = !prefilled && !decoded;
    if (clock_() - last_sweep_ >= options_.sweep_interval) {
      sessions_.SweepExpired();
      last_sweep_ = clock_();
    }
  }
}

void RequestLoop::Admit(Submitted submitted) {
  auto r = std::make_unique<ActiveRequest>(std::move(submitted.request), submitted.sink);
  const absl::Status status = Start(*r);
  if (!status.ok()) {
    if (r->session != nullptr && (r->session->ephemeral || r->created_session)) sessions_.Remove(*r->session);
    r->session = nullptr;
    Finish(*r, FinishReason::kError, status);
    return;
  }
  active_.push_back(std::move(r));
}

// Validates, claims the session and makes the prompt history (the turn
// atomicity rule: from here on the prompt belongs to the session).
absl::Status RequestLoop::Start(ActiveRequest& r) {
  const GenerateRequest& req = r.request;
  RETURN_IF_ERROR(ValidateRequest(req, limits_));
  if (req.session_id) {
    absl::StatusOr<Session*> found = sessions_.Find(req.tenant, *req.session_id);
    if (!found.ok() && absl::IsNotFound(found.status()) && req.create_session) {
      found = sessions_.Create(req.tenant, /*ephemeral=*/false, *req.session_id);
      if (found.ok()) r.created_session = true;
    }
    if (!found.ok()) return found.status();
    r.session = *found;
    if (r.session->busy) {
      Session* busy = r.session;
      r.session = nullptr;  // not ours: Finish must not touch it
      return SessionBusy(*busy);
    }
  } else {
    ASSIGN_OR_RETURN(r.session, sessions_.Create(req.tenant, /*ephemeral=*/!req.create_session));
    r.created_session = req.create_session;
  }
  Session& session = *r.session;
  // A refusal from here on leaves a session that existed before untouched
  // (Admit removes ephemeral and just-created ones).
  auto refuse = [&](absl::Status status) {
    if (!session.ephemeral && !r.created_session) r.session = nullptr;
    return status;
  };
  if (req.expected_session_length && *req.expected_session_length != session.length()) {
    return refuse(SessionLengthMismatch(session, *req.expected_session_length, "expected_session_length"));
  }
  std::vector<int32_t> prompt;
  if (const auto* text = std::get_if<std::string>(&req.prompt)) {
    const std::vector<int32_t> ids = model_.tokenizer().Encode(*text);
    if (!ids.empty()) {
      if (session.length() == 0) prompt.push_back(model_.bos_id());
      prompt.insert(prompt.end(), ids.begin(), ids.end());
    }
  } else {
    prompt = std::get<std::vector<int32_t>>(req.prompt);
  }
  if (prompt.empty() && session.pending.empty()) {
    return refuse(MakeError(absl::StatusCode::kInvalidArgument,
                            "prompt is empty (a text prompt must tokenize to at least one token)", "INVALID_PROMPT",
                            "prompt"));
  }
  if (static_cast<int64_t>(prompt.size()) > limits_.max_prompt_tokens) {
    return refuse(WithErrorDetail(
        absl::InvalidArgumentError(absl::StrCat("prompt has ", prompt.size(), " tokens, more than the limit ",
                                                limits_.max_prompt_tokens)),
        {"PROMPT_TOO_LONG", "prompt", {{"limit", std::to_string(limits_.max_prompt_tokens)}}, std::nullopt}));
  }
  session.busy = true;
  r.max_tokens = req.max_tokens.value_or(options_.default_max_tokens);
  r.usage.prompt_tokens = static_cast<int64_t>(prompt.size());
  r.usage.resumed_tokens = session.length();
  session.pending.insert(session.pending.end(), prompt.begin(), prompt.end());
  sessions_.AppendHistory(session, prompt);
  ASSIGN_OR_RETURN(IncrementalDecoder decoder, IncrementalDecoder::Create(model_.tokenizer(), session.history_tail));
  r.decoder.emplace(std::move(decoder));
  return absl::OkStatus();
}

void RequestLoop::CheckInterrupts() {
  const absl::Time now = clock_();
  for (auto& r : active_) {
    if (r->request.cancelled && r->request.cancelled->load()) {
      Finish(*r, FinishReason::kCancelled, absl::CancelledError("request cancelled"));
    } else if (now >= r->request.deadline) {
      Finish(*r, FinishReason::kDeadline, absl::DeadlineExceededError("request deadline exceeded"));
    }
  }
}

void RequestLoop::AssignSlots() {
  for (auto& r : active_) {
    if (r->started || r->done) continue;
    absl::StatusOr<bool> resident = sessions_.MakeResident(*r->session);
    if (!resident.ok()) {
      FailBatch({r.get()}, resident.status());
      continue;
    }
    if (!*resident) break;  // FCFS: later requests wait behind this one
    r->started = true;
    std::lock_guard<std::mutex> lock(mu_);
    --queued_;
  }
}

bool RequestLoop::PrefillStep() {
  std::vector<ActiveRequest*> batch;
  std::vector<PrefillSequence> seqs;
  // Prompt tokens of this iteration, shared in admission order (FCFS), so
  // that one iteration, and the decode step of everyone else, stays short.
  int64_t budget = std::max(options_.prefill_token_budget, 1);
  for (auto& r : active_) {
    if (budget == 0) break;
    if (!r->started || r->done || r->generated > 0) continue;
    Session& s = *r->session;
    const size_t n = std::min({s.pending.size(), static_cast<size_t>(options_.prefill_chunk),
                               static_cast<size_t>(budget)});
    budget -= static_cast<int64_t>(n);
    batch.push_back(r.get());
    seqs.push_back({s.slot, absl::MakeConstSpan(s.pending.data(), n), s.next_position});
  }
  if (batch.empty()) return false;
  const int vocab = model_.config().vocab_size;
  logits_.resize(batch.size() * vocab);
  if (absl::Status s = model_.backend().Prefill(seqs, options_.prefill_chunk, LogitsOutput::kLastOnly,
                                                absl::MakeSpan(logits_));
      !s.ok()) {
    FailBatch(batch, s);
    return true;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    ActiveRequest& r = *batch[i];
    Session& s = *r.session;
    const auto n = static_cast<std::ptrdiff_t>(seqs[i].tokens.size());
    s.next_position += n;
    s.pending.erase(s.pending.begin(), s.pending.begin() + n);
    if (!s.pending.empty()) continue;  // more chunks next iteration
    const absl::Span<const float> row = absl::MakeConstSpan(logits_).subspan(i * vocab, vocab);
    absl::StatusOr<int32_t> token = sampler_.Sample(row, r.request.sampling, s.history_tail, r.generated);
    if (!token.ok()) {
      FailBatch({&r}, token.status());
      continue;
    }
    std::optional<Logprobs> lp;
    if (r.request.top_logprobs) {
      absl::StatusOr<Logprobs> computed = logprobs_.Compute(row, *token, *r.request.top_logprobs);
      if (computed.ok()) lp = *std::move(computed);
    }
    Accept(r, *token, lp ? &*lp : nullptr);
  }
  return true;
}

bool RequestLoop::DecodeStep() {
  bool ran = false;
  // Requests that want logprobs need the logits on the host; the others
  // sample where the backend keeps them.
  std::vector<ActiveRequest*> fast, slow;
  for (auto& r : active_) {
    if (!r->started || r->done || r->generated == 0) continue;
    // Flow control: the last sampled token is fed only once the client has
    // been sent it (see TokenSink); a slow reader waits alone.
    if (!r->sink->Ready()) continue;
    (r->request.top_logprobs ? slow : fast).push_back(r.get());
  }
  for (std::vector<ActiveRequest*>* group : {&fast, &slow}) {
    if (group->empty()) continue;
    const size_t n = group->size();
    std::vector<int32_t> slots(n), tokens(n), sampled(n);
    std::vector<int64_t> positions(n);
    std::vector<SampleSpec> specs(n);
    for (size_t i = 0; i < n; ++i) {
      const ActiveRequest& r = *(*group)[i];
      slots[i] = r.session->slot;
      tokens[i] = r.session->pending.back();  // the one pending token of a decoding request
      positions[i] = r.session->next_position;
      specs[i] = {r.request.sampling, r.generated, r.session->history_tail};
    }
    const DecodeBatch batch{slots, tokens, positions};
    ran = true;
    const int vocab = model_.config().vocab_size;
    absl::Status status;
    if (group == &fast) {
      status = model_.backend().DecodeAndSample(batch, specs, absl::MakeSpan(sampled), {});
    } else {
      logits_.resize(n * vocab);
      status = model_.backend().Decode(batch, absl::MakeSpan(logits_));
    }
    if (!status.ok()) {
      FailBatch(*group, status);
      continue;
    }
    for (size_t i = 0; i < n; ++i) {
      ActiveRequest& r = *(*group)[i];
      r.session->next_position += 1;
      r.session->pending.clear();
      if (group == &fast) {
        Accept(r, sampled[i], nullptr);
        continue;
      }
      const absl::Span<const float> row = absl::MakeConstSpan(logits_).subspan(i * vocab, vocab);
      absl::StatusOr<int32_t> token = sampler_.Sample(row, r.request.sampling, r.session->history_tail, r.generated);
      absl::StatusOr<Logprobs> lp =
          token.ok() ? logprobs_.Compute(row, *token, *r.request.top_logprobs) : token.status();
      if (!lp.ok()) {
        FailBatch({&r}, lp.status());
        continue;
      }
      Accept(r, *token, &*lp);
    }
  }
  return ran;
}

void RequestLoop::Accept(ActiveRequest& r, int32_t token, const Logprobs* logprobs) {
  Session& s = *r.session;
  s.pending.push_back(token);
  sessions_.AppendHistory(s, absl::MakeConstSpan(&token, 1));
  ++r.generated;
  ++r.usage.generated_tokens;
  absl::StatusOr<std::string> delta = r.decoder->Step(token);
  const std::string text = r.stops.Push(delta.ok() ? *delta : std::string());
  r.sink->OnTokens(absl::MakeConstSpan(&token, 1), text,
                   logprobs ? absl::MakeConstSpan(logprobs, 1) : absl::Span<const Logprobs>());
  const auto& stop_ids = r.request.stop_token_ids;
  if (r.stops.matched()) {
    Finish(r, FinishReason::kStopString, absl::OkStatus());
  } else if (!r.request.ignore_eos && token == model_.eos_id()) {
    Finish(r, FinishReason::kEos, absl::OkStatus());
  } else if (std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
    Finish(r, FinishReason::kStopToken, absl::OkStatus());
  } else if (r.generated >= r.max_tokens) {
    Finish(r, FinishReason::kLength, absl::OkStatus());
  }
}

void RequestLoop::FailBatch(const std::vector<ActiveRequest*>& batch, const absl::Status& status) {
  for (ActiveRequest* r : batch) {
    // The state is unknown after a failed backend call: drop the session.
    Session* named = (r->session != nullptr && !r->session->ephemeral) ? r->session : nullptr;
    Finish(*r, FinishReason::kError, status);
    if (named != nullptr) sessions_.Remove(*named);
  }
}

void RequestLoop::Finish(ActiveRequest& r, FinishReason reason, absl::Status status) {
  if (r.done) return;
  r.done = true;
  FinishInfo info;
  info.reason = reason;
  info.usage = r.usage;
  if (reason == FinishReason::kStopString) info.stop_string = r.request.stop_strings[*r.stops.matched()];
  if (reason == FinishReason::kEos || reason == FinishReason::kStopToken) info.stop_token = r.session->pending.back();

  if (r.session != nullptr && (reason == FinishReason::kCancelled || reason == FinishReason::kDeadline)) {
    RetractUnsent(r);
    info.usage = r.usage;
  }
  if (r.session != nullptr) {
    Session& s = *r.session;
    const bool interrupted = reason == FinishReason::kCancelled || reason == FinishReason::kDeadline;
    if (r.decoder && !r.stops.matched() && reason != FinishReason::kError && !interrupted) {
      absl::StatusOr<std::string> tail = r.decoder->Flush();
      std::string text = r.stops.Push(tail.ok() ? *tail : std::string());
      if (!r.stops.matched()) text += r.stops.Flush();
      if (!text.empty()) r.sink->OnTokens({}, text, {});
    }
    s.busy = false;
    s.last_used = clock_();
    info.session_length = s.length();
    if (s.ephemeral) {
      sessions_.Remove(s);
    } else {
      info.session_id = s.id;
    }
    r.session = nullptr;
  }
  info.status = std::move(status);
  r.sink->OnFinish(info);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!r.started) --queued_;
    --in_flight_;
  }
  idle_cv_.notify_all();
}

void RequestLoop::RetractUnsent(ActiveRequest& r) {
  Session& s = *r.session;
  // Only sampled tokens that were never fed can be taken back: with the flow
  // control of DecodeStep that is at most the last one, still pending.
  const int64_t unfed_sampled = r.generated > 0 ? std::min<int64_t>(1, static_cast<int64_t>(s.pending.size())) : 0;
  const int64_t n = std::min<int64_t>(r.sink->Retract(), unfed_sampled);
  for (int64_t i = 0; i < n; ++i) {
    s.pending.pop_back();
    if (!s.history_tail.empty()) s.history_tail.pop_back();
    --r.usage.generated_tokens;
  }
}

void RequestLoop::RemoveFinished() {
  active_.erase(std::remove_if(active_.begin(), active_.end(), [](const auto& r) { return r->done; }),
                active_.end());
}

}  // namespace supra

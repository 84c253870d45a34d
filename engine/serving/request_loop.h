// The engine's request loop: one thread that owns the Backend and the
// sessions, serving every request with iteration-level batching. The seed of
// the batching scheduler.
//
// Each iteration: take new requests from the queue (validate, look up or
// create the session, claim it), end those cancelled or past their deadline,
// give waiting requests a slot (FCFS), run one prefill chunk of every
// prefilling request in one Prefill call, then one decode step of every
// decoding request (DecodeAndSample; Decode and CPU sampling for requests
// that want logprobs), and push the tokens to the sinks.
//
// One request per session at a time: a Generate on a busy session fails at
// once with ABORTED (retryable), never interleaves.
//
// Turn atomicity (the rule for every interruption: cancel, deadline, client
// gone, drain): a session keeps exactly the tokens the client was sent. The
// prompt is history once the request is admitted (what was not yet fed stays
// pending); every sampled token is handed to the sink in the iteration that
// sampled it, and is fed to the model only once the sink has handed it on
// (TokenSink::Ready), so on an interruption the unsent last token, if any,
// is retracted (TokenSink::Retract) and every token the client was sent is
// history and nothing else is. The finish info reports the session's
// resulting length. A backend error leaves the state unknown: the request
// fails and its session is deleted.
#ifndef SUPRA_ENGINE_SERVING_REQUEST_LOOP_H_
#define SUPRA_ENGINE_SERVING_REQUEST_LOOP_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/runtime/model.h"
#include "engine/sampling/logprobs.h"
#include "engine/sampling/sampler.h"
#include "engine/serving/generate_request.h"
#include "engine/serving/request_validation.h"
#include "engine/serving/session_table.h"

namespace supra {

struct RequestLoopOptions {
  SessionOptions sessions;
  int max_queued = 256;              // submitted, not yet running; beyond: RESOURCE_EXHAUSTED
  int32_t default_max_tokens = 256;  // cap when a request sets none (the model never runs out of context)
  int32_t max_tokens_limit = 4096;
  int64_t max_prompt_tokens = 1 << 20;
  int32_t max_top_logprobs = 20;
  int prefill_chunk = 256;           // prompt tokens per request per iteration
  int prefill_token_budget = 2048;   // prompt tokens per iteration, all requests together
  absl::Duration sweep_interval = absl::Seconds(10);  // idle-TTL sweep period (real time)
  Clock clock;                       // null: absl::Now (tests inject one)
};

struct ActiveRequest;

// A session to create: an id (unset: a fresh random one) and an optional
// system prompt, text (BOS first) or token ids taken as given.
struct NewSession {
  std::optional<std::string> id;
  std::optional<std::variant<std::string, std::vector<int32_t>>> system_prompt;
};

// Called once on the loop's thread with the result of an asynchronous session
// operation; must not block.
template <typename T>
using Done = std::function<void(absl::StatusOr<T>)>;

class RequestLoop {
 public:
  // `model` must outlive the loop; from now on only the loop's thread uses
  // model.backend().
  RequestLoop(Model& model, RequestLoopOptions options);
  ~RequestLoop();  // cancels what is left (CANCELLED) and joins the thread
  RequestLoop(const RequestLoop&) = delete;
  RequestLoop& operator=(const RequestLoop&) = delete;

  // Queues a request and returns at once. UNAVAILABLE while draining,
  // RESOURCE_EXHAUSTED when the queue is full; the sink is then never called.
  // Otherwise `sink` (which must live until its OnFinish) gets the results,
  // errors included, on the loop's thread.
  absl::Status Submit(GenerateRequest request, TokenSink* sink) ABSL_LOCKS_EXCLUDED(mu_);

  // Stops admitting, lets in-flight requests finish until `timeout`, then
  // cancels the rest; returns once none is left.
  void Drain(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  // Session management, run on the loop's thread between iterations. The
  // *Async forms return at once and call `done` on the loop's thread (for
  // callers that must not block, such as gRPC reactors); the others block
  // the caller until then. Errors as in SessionTable. A system prompt is
  // consumed right away (INVALID_ARGUMENT for bad tokens or over the prompt
  // limit). After the loop has stopped, `done` runs on the destroying thread
  // with UNAVAILABLE.
  void CreateSessionAsync(const std::string& tenant, NewSession spec, Done<SessionInfo> done);
  void GetSessionAsync(const std::string& tenant, const std::string& id, Done<SessionInfo> done);
  void ListSessionsAsync(const std::string& tenant, int page_size, const std::string& page_token,
                         Done<SessionPage> done);
  void ForkSessionAsync(const std::string& tenant, const std::string& id, std::optional<int64_t> expected_length,
                        std::optional<std::string> new_id, Done<SessionInfo> done);
  void DeleteSessionAsync(const std::string& tenant, const std::string& id, std::optional<int64_t> expected_length,
                          Done<bool> done);

  absl::StatusOr<SessionInfo> CreateSession(const std::string& tenant, NewSession spec);
  absl::StatusOr<SessionInfo> CreateSession(const std::string& tenant, std::optional<std::string> system_prompt);
  absl::StatusOr<SessionInfo> GetSession(const std::string& tenant, const std::string& id);
  absl::StatusOr<SessionPage> ListSessions(const std::string& tenant, int page_size, const std::string& page_token);
  absl::StatusOr<SessionInfo> ForkSession(const std::string& tenant, const std::string& id,
                                          std::optional<int64_t> expected_length,
                                          std::optional<std::string> new_id = {});
  absl::Status DeleteSession(const std::string& tenant, const std::string& id,
                             std::optional<int64_t> expected_length);
  // Runs the idle-TTL sweep now; returns how many sessions were deleted.
  int SweepExpiredSessions();

  // Requests submitted and not yet finished (for metrics and drain).
  int in_flight() ABSL_LOCKS_EXCLUDED(mu_);

  // Tells the loop that something it waits for changed (a sink became
  // Ready, a request was cancelled). Without it the loop notices within a
  // few milliseconds. Thread-safe, never blocks for long.
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Submitted {
    GenerateRequest request;
    TokenSink* sink;
  };

  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Runs `task(true)` on the loop's thread, or `task(false)` on the
  // destroying thread if the loop stopped first.
  void Post(std::function<void(bool)> task) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<SessionInfo> CreateSessionNow(const std::string& tenant, NewSession spec);
  // Drops the sampled tokens the sink did not hand on (interrupted turns).
  void RetractUnsent(ActiveRequest& r);
  // Loop-thread steps.
  void Admit(Submitted submitted);
  absl::Status Start(ActiveRequest& r);
  void CheckInterrupts();
  void AssignSlots();
  // Each returns whether it ran the model.
  bool PrefillStep();
  bool DecodeStep();
  // Handles one sampled token: history, sink, stop conditions.
  void Accept(ActiveRequest& r, int32_t token, const Logprobs* logprobs);
  void Finish(ActiveRequest& r, FinishReason reason, absl::Status status);
  void FailBatch(const std::vector<ActiveRequest*>& batch, const absl::Status& status);
  void RemoveFinished();
  absl::Status ConsumeNow(Session& session);

  Model& model_;
  const RequestLoopOptions options_;
  const RequestLimits limits_;
  Clock clock_;

  std::mutex mu_;
  std::condition_variable cv_;       // wakes the loop
  std::condition_variable idle_cv_;  // in_flight_ dropped
  std::deque<Submitted> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(bool)>> tasks_ ABSL_GUARDED_BY(mu_);
  int queued_ ABSL_GUARDED_BY(mu_) = 0;     // submitted, not yet started or ended
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // submitted, OnFinish not yet called
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_all_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;

  // Loop-thread state.
  SessionTable sessions_;
  std::vector<std::unique_ptr<ActiveRequest>> active_;  // admission order
  Sampler sampler_;
  LogprobsCalculator logprobs_;
  std::vector<float> logits_;  // [n, vocab], fp32 scratch
  absl::Time last_sweep_;

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace supra

#endif  // SUPRA_ENGINE_SERVING_REQUEST_LOOP_H_

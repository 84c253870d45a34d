// What a Generate call asks of the engine, and the sink its results go to.
#ifndef SUPRA_ENGINE_SERVING_GENERATE_REQUEST_H_
#define SUPRA_ENGINE_SERVING_GENERATE_REQUEST_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/sampling/logprobs.h"
#include "engine/sampling/sampling_params.h"

namespace supra {

struct GenerateRequest {
  std::string request_id;  // echoed in logs; not interpreted
  std::string tenant;
  // None: an ephemeral session, deleted when the request ends (unless
  // create_session).
  std::optional<std::string> session_id;
  // With session_id: create that session (empty) when it does not exist.
  // Without: create a named session with a fresh id. FinishInfo.session_id
  // names it either way.
  bool create_session = false;
  // Text (BOS is prepended when it starts a new sequence, supra-model.md §5)
  // or token ids, taken as given. May be empty only on a session with
  // pending tokens.
  std::variant<std::string, std::vector<int32_t>> prompt;
  SamplingParams sampling;
  std::optional<int32_t> max_tokens;  // unset: RequestLoopOptions::default_max_tokens
  std::vector<std::string> stop_strings;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  std::optional<int32_t> top_logprobs;  // set: logprobs with this many alternatives
  std::optional<int64_t> expected_session_length;  // FAILED_PRECONDITION on mismatch
  absl::Time deadline = absl::InfiniteFuture();
  // Set by the caller (e.g. the client went away); seen at the next iteration.
  std::shared_ptr<std::atomic<bool>> cancelled;
};

enum class FinishReason { kEos, kStopString, kStopToken, kLength, kCancelled, kDeadline, kError };

struct Usage {
  int64_t prompt_tokens = 0;     // the prompt, BOS included
  int64_t resumed_tokens = 0;    // the session's length before the turn (history not recomputed)
  int64_t generated_tokens = 0;  // sampled tokens that stayed in the history
};

struct FinishInfo {
  absl::Status status;  // OK for eos, stop and length
  FinishReason reason = FinishReason::kError;
  std::string stop_string;    // kStopString: which one matched
  int32_t stop_token = -1;    // kStopToken, kEos: the token
  Usage usage;
  std::string session_id;     // empty for an ephemeral session
  int64_t session_length = 0; // history tokens after the turn
};

// Where a request's results go. Called only from the request loop's thread,
// which must never block: an implementation queues and returns.
//
// Flow control and the turn rule. A sink that forwards to a client (the
// gRPC stream) hands tokens on one write at a time; Ready() says whether
// everything it was given has been handed on. The loop does not feed a
// sampled token into the model (the next decode step of that request) until
// the sink is Ready, so a slow reader holds back only its own request, never
// the batch, and at most the last sampled token is ever unsent. When a turn is
// interrupted (cancel, deadline, drain), the loop calls Retract(): the sink
// drops what it has not handed on and returns how many tokens that was, and
// the loop removes them from the session (they were never fed), so the
// session keeps exactly the tokens the client was sent.
class TokenSink {
 public:
  virtual ~TokenSink() = default;
  // Everything given so far has been handed on (thread-safe).
  virtual bool Ready() { return true; }
  // Drops tokens not yet handed on; returns how many (the last ones given).
  virtual int Retract() { return 0; }
  // Newly sampled tokens and the text that became final (possibly empty:
  // text that could start a stop string is held back). logprobs is empty
  // unless requested, then one per id. The last call may carry text only.
  virtual void OnTokens(absl::Span<const int32_t> ids, std::string_view text,
                        absl::Span<const Logprobs> logprobs) = 0;
  // Exactly once per accepted request, last.
  virtual void OnFinish(const FinishInfo& info) = 0;
};

}  // namespace supra

#endif  // SUPRA_ENGINE_SERVING_GENERATE_REQUEST_H_

// In-memory sessions (supra-model.md §5) and the backend slots that hold
// their recurrent states.
//
// Not thread-safe: only the request loop's thread, which owns the Backend,
// touches a SessionTable. Other threads reach it through RequestLoop.
//
// Residency: a session's state lives in a backend slot while resident. When
// a session needs a slot and none is free, the least recently used session
// that is not busy is evicted: its state is read to host memory (ReadState)
// and written back (WriteState) when it is used again.
#ifndef SUPRA_ENGINE_SERVING_SESSION_TABLE_H_
#define SUPRA_ENGINE_SERVING_SESSION_TABLE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/backend.h"

namespace supra {

using Clock = std::function<absl::Time()>;

struct SessionOptions {
  int max_sessions = 1024;                    // named (non-ephemeral) sessions; beyond: RESOURCE_EXHAUSTED
  absl::Duration idle_ttl = absl::Hours(1);   // idle longer than this: deleted
  int history_tail_tokens = 4096;             // history kept for penalties and detokenization
};

struct Session {
  std::string id;
  std::string tenant;
  bool ephemeral = false;  // one request's session, deleted when it ends; not listed
  bool busy = false;       // a request owns it
  int32_t slot = -1;       // backend slot while resident, else -1
  // [layers, H, F, Dv] fp32 while evicted; empty with slot -1: the zero state.
  std::vector<float> host_state;
  int64_t next_position = 0;     // position of the next token fed
  std::vector<int32_t> pending;  // history tokens not yet fed, oldest first
  // The last tokens of the history (fed and pending), most recent last.
  std::vector<int32_t> history_tail;
  absl::Time created;
  absl::Time last_used;

  // Tokens of history.
  int64_t length() const { return next_position + static_cast<int64_t>(pending.size()); }
};

struct SessionInfo {
  std::string id;
  int64_t length = 0;
  std::string tier;  // "device" (in a backend slot) or "host"
  int64_t state_bytes = 0;
  absl::Time created;
  absl::Time last_used;
  bool busy = false;
};

struct SessionPage {
  std::vector<SessionInfo> sessions;
  std::string next_page_token;  // empty on the last page
};

// Errors shared with the request loop, with their ErrorInfo detail.
absl::Status SessionBusy(const Session& session);  // ABORTED, SESSION_BUSY
absl::Status SessionLengthMismatch(const Session& session, int64_t expected,
                                   std::string_view field);  // FAILED_PRECONDITION

class SessionTable {
 public:
  SessionTable(Backend& backend, const SessionOptions& options, Clock clock);

  // A new empty session, with the given id or a fresh random one.
  // INVALID_ARGUMENT for a malformed id, ALREADY_EXISTS for an id of this
  // tenant in use, RESOURCE_EXHAUSTED beyond max_sessions (ephemeral sessions
  // do not count: they live only as long as their request).
  absl::StatusOr<Session*> Create(const std::string& tenant, bool ephemeral, std::optional<std::string> id = {});
  // INVALID_ARGUMENT for a malformed id; NOT_FOUND for an unknown, expired or
  // ephemeral session and for another tenant's.
  absl::StatusOr<Session*> Find(const std::string& tenant, const std::string& id);
  // FAILED_PRECONDITION when expected_length is set and differs; ABORTED
  // while a request owns the session.
  absl::Status Delete(const std::string& tenant, const std::string& id, std::optional<int64_t> expected_length);
  // A new independent session (id as in Create) with a copy of the source's
  // state, position, pending tokens and history tail.
  absl::StatusOr<Session*> Fork(const std::string& tenant, const std::string& id,
                                std::optional<int64_t> expected_length, std::optional<std::string> new_id = {});
  // The tenant's named sessions ordered by id, page_size of them (0 means
  // 100, more than 1000 means 1000) after the opaque page_token.
  absl::StatusOr<SessionPage> List(const std::string& tenant, int page_size, const std::string& page_token);

  // Gives the session a slot holding its state. False when every slot holds
  // a busy session (the caller retries later).
  absl::StatusOr<bool> MakeResident(Session& session);
  // Removes a session whatever its state (ephemeral ends, failed requests).
  void Remove(Session& session);
  // Deletes idle sessions past their TTL; returns how many.
  int SweepExpired();

  void AppendHistory(Session& session, absl::Span<const int32_t> tokens) const;
  SessionInfo Info(const Session& session) const;
  absl::Time Now() const { return clock_(); }
  int size() const { return static_cast<int>(sessions_.size()); }

 private:
  bool Expired(const Session& session) const;
  absl::Status Evict(Session& session);
  // The last free slot (whose state the caller has set) becomes the session's.
  void TakeFreeSlot(Session& session);
  // The session's slot goes back to the free list; the session is not resident.
  void ReleaseSlot(Session& session);

  Backend& backend_;
  SessionOptions options_;
  Clock clock_;
  int64_t state_numel_;
  // By tenant + '\0' + id: List's stable order, one range per tenant.
  std::map<std::string, std::unique_ptr<Session>> sessions_;
  std::vector<int32_t> free_slots_;
  std::vector<Session*> slot_owner_;  // [num_slots]
  int named_sessions_ = 0;
};

}  // namespace supra

#endif  // SUPRA_ENGINE_SERVING_SESSION_TABLE_H_

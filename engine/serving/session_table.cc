#include "engine/serving/session_table.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/serving/session_id.h"
#include "engine/util/absl_compat.h"
#include "engine/util/error_detail.h"
#include "engine/util/status_macros.h"

namespace supra {
namespace {

// Sessions are keyed by tenant, then id: ids are scoped to a tenant, and one
// tenant's sessions are one contiguous range of the map.
std::string MapKey(const std::string& tenant, std::string_view id) {
  std::string key = tenant;
  key.push_back('\0');
  key.append(id);
  return key;
}

absl::Status NotFound(std::string_view id, std::string_view why = {}) {
  return WithErrorDetail(absl::NotFoundError(absl::StrCat("session ", ToAbsl(id), " not found", ToAbsl(why))),
                         {"SESSION_NOT_FOUND", "session_id", {{"session_id", std::string(id)}}, std::nullopt});
}

}  // namespace

absl::Status SessionLengthMismatch(const Session& session, int64_t expected, std::string_view field) {
  return WithErrorDetail(absl::FailedPreconditionError(absl::StrCat("session ", ToAbsl(session.id), " has length ",
                                                                    session.length(), ", expected ", expected)),
                         {"SESSION_LENGTH_MISMATCH",
                          std::string(field),
                          {{"session_id", session.id}, {"actual_length", std::to_string(session.length())}},
                          std::nullopt});
}

absl::Status SessionBusy(const Session& session) {
  return WithErrorDetail(
      absl::AbortedError(absl::StrCat("session ", ToAbsl(session.id),
                                      " is busy with another request; retry when it finishes")),
      {"SESSION_BUSY", "session_id", {{"session_id", session.id}}, absl::Milliseconds(100)});
}

namespace {

absl::Status CheckExpectedLength(const Session& session, std::optional<int64_t> expected_length) {
  if (expected_length && *expected_length != session.length()) {
    return SessionLengthMismatch(session, *expected_length, "expected_length");
  }
  return absl::OkStatus();
}

}  // namespace

SessionTable::SessionTable(Backend& backend, const SessionOptions& options, Clock clock)
    : backend_(backend),
      options_(options),
      clock_(std::move(clock)),
      state_numel_(backend.config().state_numel()),
      slot_owner_(backend.num_slots(), nullptr) {
  // Popped from the back: slot 0 is handed out first.
  for (int32_t s = backend.num_slots() - 1; s >= 0; --s) free_slots_.push_back(s);
}

absl::StatusOr<Session*> SessionTable::Create(const std::string& tenant, bool ephemeral,
                                              std::optional<std::string> id) {
  if (id) {
    RETURN_IF_ERROR(ValidateSessionId(*id));
    auto it = sessions_.find(MapKey(tenant, *id));
    if (it != sessions_.end()) {
      if (!Expired(*it->second)) {
        return WithErrorDetail(absl::AlreadyExistsError(absl::StrCat("session ", ToAbsl(*id), " already exists")),
                               {"SESSION_EXISTS", "session_id", {{"session_id", *id}}, std::nullopt});
      }
      Remove(*it->second);
    }
  }
  if (!ephemeral && named_sessions_ >= options_.max_sessions) {
    SweepExpired();  // expired sessions must not hold the limit
    if (named_sessions_ >= options_.max_sessions) {
      return WithErrorDetail(
          absl::ResourceExhaustedError(absl::StrCat("session limit reached (", options_.max_sessions,
                                                    "); delete sessions or wait for idle ones to expire")),
          {"TOO_MANY_SESSIONS", "", {{"limit", std::to_string(options_.max_sessions)}}, std::nullopt});
    }
  }
  auto session = std::make_unique<Session>();
  session->id = id ? *std::move(id) : NewSessionId();
  session->tenant = tenant;
  session->ephemeral = ephemeral;
  session->created = session->last_used = clock_();
  Session* out = session.get();
  sessions_.emplace(MapKey(tenant, out->id), std::move(session));
  if (!ephemeral) ++named_sessions_;
  return out;
}

bool SessionTable::Expired(const Session& session) const {
  return !session.busy && clock_() - session.last_used > options_.idle_ttl;
}

absl::StatusOr<Session*> SessionTable::Find(const std::string& tenant, const std::string& id) {
  RETURN_IF_ERROR(ValidateSessionId(id));
  // Keyed by tenant: another tenant's session reads as unknown, its
  // existence is not revealed.
  auto it = sessions_.find(MapKey(tenant, id));
  if (it == sessions_.end() || it->second->ephemeral) return NotFound(id);
  if (Expired(*it->second)) {
    Remove(*it->second);
    return NotFound(id, " (expired)");
  }
  return it->second.get();
}

absl::Status SessionTable::Delete(const std::string& tenant, const std::string& id,
                                  std::optional<int64_t> expected_length) {
  ASSIGN_OR_RETURN(Session * session, Find(tenant, id));
  if (session->busy) return SessionBusy(*session);
  RETURN_IF_ERROR(CheckExpectedLength(*session, expected_length));
  Remove(*session);
  return absl::OkStatus();
}

absl::StatusOr<Session*> SessionTable::Fork(const std::string& tenant, const std::string& id,
                                            std::optional<int64_t> expected_length,
                                            std::optional<std::string> new_id) {
  ASSIGN_OR_RETURN(Session * source, Find(tenant, id));
  // Mid-turn the state and the history disagree; a fork must see a whole turn.
  if (source->busy) return SessionBusy(*source);
  RETURN_IF_ERROR(CheckExpectedLength(*source, expected_length));
  ASSIGN_OR_RETURN(Session * fork, Create(tenant, /*ephemeral=*/false, std::move(new_id)));
  // A resident source is copied slot to slot when a slot is free (on the
  // device for the CUDA backend); otherwise through host memory, and the
  // fork becomes resident on first use.
  if (source->slot >= 0 && !free_slots_.empty()) {
    const int32_t slot = free_slots_.back();
    if (absl::Status s = backend_.CopySlot(source->slot, slot); !s.ok()) {
      Remove(*fork);
      return s;
    }
    TakeFreeSlot(*fork);
  } else if (source->slot >= 0) {
    fork->host_state.resize(state_numel_);
    if (absl::Status s = backend_.ReadState(source->slot, absl::MakeSpan(fork->host_state)); !s.ok()) {
      Remove(*fork);
      return s;
    }
  } else {
    fork->host_state = source->host_state;
  }
  fork->next_position = source->next_position;
  fork->pending = source->pending;
  fork->history_tail = source->history_tail;
  source->last_used = clock_();
  return fork;
}

absl::StatusOr<SessionPage> SessionTable::List(const std::string& tenant, int page_size,
                                               const std::string& page_token) {
  if (page_size < 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, absl::StrCat("page_size must be >= 0, got ", page_size),
                     "INVALID_PAGE_SIZE", "page_size");
  }
  if (page_size == 0) page_size = 100;
  page_size = std::min(page_size, 1000);
  std::string after;
  if (!page_token.empty() && (!absl::WebSafeBase64Unescape(page_token, &after) || after.empty() ||
                              !ValidateSessionId(after).ok())) {
    return MakeError(absl::StatusCode::kInvalidArgument, "page_token is not one this server returned",
                     "INVALID_PAGE_TOKEN", "page_token");
  }
  SweepExpired();
  SessionPage page;
  const std::string prefix = MapKey(tenant, "");
  auto it = after.empty() ? sessions_.lower_bound(prefix) : sessions_.upper_bound(MapKey(tenant, after));
  for (; it != sessions_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    const Session& s = *it->second;
    if (s.ephemeral) continue;
    if (static_cast<int>(page.sessions.size()) == page_size) {
      // Ordered by id, so the last id returned marks the place even when
      // sessions are created or deleted between pages.
      page.next_page_token = absl::WebSafeBase64Escape(page.sessions.back().id);
      break;
    }
    page.sessions.push_back(Info(s));
  }
  return page;
}

absl::Status SessionTable::Evict(Session& session) {
  session.host_state.resize(state_numel_);
  RETURN_IF_ERROR(backend_.ReadState(session.slot, absl::MakeSpan(session.host_state)));
  ReleaseSlot(session);
  return absl::OkStatus();
}

void SessionTable::TakeFreeSlot(Session& session) {
  session.slot = free_slots_.back();
  free_slots_.pop_back();
  slot_owner_[session.slot] = &session;
}

void SessionTable::ReleaseSlot(Session& session) {
  slot_owner_[session.slot] = nullptr;
  free_slots_.push_back(session.slot);
  session.slot = -1;
}

absl::StatusOr<bool> SessionTable::MakeResident(Session& session) {
  session.last_used = clock_();
  if (session.slot >= 0) return true;
  if (free_slots_.empty()) {
    Session* victim = nullptr;
    for (Session* owner : slot_owner_) {
      if (owner != nullptr && !owner->busy && (victim == nullptr || owner->last_used < victim->last_used)) {
        victim = owner;
      }
    }
    if (victim == nullptr) return false;
    RETURN_IF_ERROR(Evict(*victim));
  }
  const int32_t slot = free_slots_.back();
  if (session.host_state.empty()) {
    RETURN_IF_ERROR(backend_.ResetSlot(slot));
  } else {
    RETURN_IF_ERROR(backend_.WriteState(slot, session.host_state));
    session.host_state = std::vector<float>();  // release the host copy
  }
  TakeFreeSlot(session);
  return true;
}

void SessionTable::Remove(Session& session) {
  if (session.slot >= 0) ReleaseSlot(session);
  if (!session.ephemeral) --named_sessions_;
  sessions_.erase(MapKey(session.tenant, session.id));  // destroys `session`
}

int SessionTable::SweepExpired() {
  int removed = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    Session& s = *(it++)->second;  // advance first: Remove erases s
    if (Expired(s)) {
      Remove(s);
      ++removed;
    }
  }
  return removed;
}

void SessionTable::AppendHistory(Session& session, absl::Span<const int32_t> tokens) const {
  std::vector<int32_t>& tail = session.history_tail;
  tail.insert(tail.end(), tokens.begin(), tokens.end());
  // Trim in batches so that appending one token at a time stays O(1) amortised.
  const size_t cap = static_cast<size_t>(options_.history_tail_tokens);
  if (tail.size() > 2 * cap) tail.erase(tail.begin(), tail.end() - static_cast<std::ptrdiff_t>(cap));
}

SessionInfo SessionTable::Info(const Session& session) const {
  SessionInfo info;
  info.id = session.id;
  info.length = session.length();
  info.tier = session.slot >= 0 ? "device" : "host";
  info.state_bytes = state_numel_ * static_cast<int64_t>(sizeof(float));
  info.created = session.created;
  info.last_used = session.last_used;
  info.busy = session.busy;
  return info;
}

}  // namespace supra

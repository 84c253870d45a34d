#include "engine/serving/session_id.h"

#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"
#include "engine/util/error_detail.h"

namespace supra {

absl::Status ValidateSessionId(std::string_view id) {
  if (id.empty() || id.size() > 128) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("session_id must have 1 to 128 characters, got ", id.size()), "INVALID_SESSION_ID",
                     "session_id");
  }
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    const bool ok = alnum || (i > 0 && (c == '_' || c == '-' || c == '.' || c == ':'));
    if (!ok) {
      return MakeError(absl::StatusCode::kInvalidArgument,
                       "session_id must be [A-Za-z0-9._:-] characters and start with a letter or digit",
                       "INVALID_SESSION_ID", "session_id");
    }
  }
  return absl::OkStatus();
}

namespace {

std::mutex rng_mu;  // guards Rng()
std::mt19937_64& Rng() {
  static std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

}  // namespace

uint64_t NewRandomU64() {
  std::lock_guard<std::mutex> lock(rng_mu);
  return Rng()();
}

std::string NewRandomId(std::string_view prefix) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string id(prefix);
  std::lock_guard<std::mutex> lock(rng_mu);
  for (int i = 0; i < 22; ++i) id.push_back(kAlphabet[Rng()() % 62]);
  return id;
}

std::string NewSessionId() { return NewRandomId("s_"); }

}  // namespace supra

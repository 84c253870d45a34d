#include "engine/serving/session_id.h"

#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"

namespace supra {

absl::Status ValidateSessionId(std::string_view id) {
  if (id.empty() || id.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat("session_id must have 1 to 128 characters, got ", id.size()));
  }
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return absl::InvalidArgumentError("session_id may contain only [A-Za-z0-9_-]");
  }
  return absl::OkStatus();
}

std::string NewSessionId() {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::string id = "s_";
  std::lock_guard<std::mutex> lock(mu);
  for (int i = 0; i < 22; ++i) id.push_back(kAlphabet[rng() % 62]);
  return id;
}

}  // namespace supra

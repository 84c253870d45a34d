#include "server/log.h"

#include <cstdio>
#include <mutex>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace supra::server {
namespace {

void Write(char level, std::string_view message) {
  static std::mutex mu;
  const std::string time = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "%s %c %.*s\n", time.c_str(), level, static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
}

}  // namespace

void LogInfo(std::string_view message) { Write('I', message); }
void LogWarning(std::string_view message) { Write('W', message); }
void LogError(std::string_view message) { Write('E', message); }

}  // namespace supra::server

// Server logs: one line per event on stderr, "<UTC time> <level> <message>",
// for a container's log collector. Thread-safe.
#ifndef SUPRA_SERVER_LOG_H_
#define SUPRA_SERVER_LOG_H_

#include <string_view>

namespace supra::server {

void LogInfo(std::string_view message);
void LogWarning(std::string_view message);
void LogError(std::string_view message);

}  // namespace supra::server

#endif  // SUPRA_SERVER_LOG_H_

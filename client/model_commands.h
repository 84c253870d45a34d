// `tokenize`, `detokenize`, `info` (ModelService) and `health`
// (grpc.health.v1.Health/Check).
#ifndef SUPRA_CLIENT_MODEL_COMMANDS_H_
#define SUPRA_CLIENT_MODEL_COMMANDS_H_

#include <optional>
#include <string>
#include <vector>

#include "client/flags.h"
#include "client/invocation.h"

namespace supra::client {

const std::vector<FlagSpec>& TokenizeFlagSpecs();
const std::vector<FlagSpec>& DetokenizeFlagSpecs();
const std::vector<FlagSpec>& InfoFlagSpecs();
const std::vector<FlagSpec>& HealthFlagSpecs();

int RunTokenize(Invocation& invocation, const ParsedFlags& flags);
int RunDetokenize(Invocation& invocation, const ParsedFlags& flags);
int RunInfo(Invocation& invocation, const ParsedFlags& flags);
int RunHealth(Invocation& invocation, const ParsedFlags& flags);

// grpc.health.v1 on the wire, by hand: Debian 12's gRPC ships no generated
// health code, and a second copy of health.proto in one process would clash
// with any other in the descriptor pool. HealthCheckRequest{string service =
// 1}; HealthCheckResponse{ServingStatus status = 1}.
std::string EncodeHealthCheckRequest(const std::string& service);
// The status number (0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN),
// or null for bytes that are not a HealthCheckResponse.
std::optional<int> DecodeHealthCheckResponse(const std::string& bytes);

}  // namespace supra::client

#endif  // SUPRA_CLIENT_MODEL_COMMANDS_H_

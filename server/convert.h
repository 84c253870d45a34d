// Wire types (supra.v1) to engine types and back. Checks that need no
// engine state happen here; the rest in the engine (request_validation.h).
#ifndef SUPRA_SERVER_CONVERT_H_
#define SUPRA_SERVER_CONVERT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/sampling/logprobs.h"
#include "engine/serving/generate_request.h"
#include "engine/serving/request_loop.h"
#include "engine/serving/session_table.h"
#include "supra/v1/inference.pb.h"
#include "supra/v1/sessions.pb.h"

namespace supra::server {

// INVALID_ARGUMENT (INVALID_REQUEST_ID) unless empty or 1-128 printable
// ASCII characters.
absl::Status ValidateRequestId(const std::string& id);
// A fresh random request id ("r_" + 22 base62 characters).
std::string NewRequestId();

// The engine request for a Generate call. An unset seed gets a random one.
absl::StatusOr<GenerateRequest> ToEngine(const v1::GenerateRequest& request, const std::string& tenant,
                                         absl::Time deadline);

// The system prompt and id of a CreateSession call.
NewSession ToEngine(const v1::CreateSessionRequest& request);

void ToProto(const SessionInfo& info, v1::Session* out);
void ToProto(const Logprobs& lp, int32_t token, v1::TokenLogprob* out);
v1::FinishReason ToProto(FinishReason reason);

}  // namespace supra::server

#endif  // SUPRA_SERVER_CONVERT_H_

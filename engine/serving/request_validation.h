// Checks of a GenerateRequest that need no session: every bad field is
// INVALID_ARGUMENT naming the field.
#ifndef SUPRA_ENGINE_SERVING_REQUEST_VALIDATION_H_
#define SUPRA_ENGINE_SERVING_REQUEST_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "engine/serving/generate_request.h"

namespace supra {

// Most entries in stop_strings, and in stop_token_ids.
inline constexpr int32_t kMaxStopSequences = 16;

struct RequestLimits {
  int32_t vocab_size = 0;
  int32_t max_tokens_limit = 4096;
  int64_t max_prompt_tokens = 1 << 20;
  int32_t max_top_logprobs = 20;
  int32_t max_stop_strings = kMaxStopSequences;
  int32_t history_tail_tokens = 4096;  // the longest penalty window served
};

absl::Status ValidateRequest(const GenerateRequest& request, const RequestLimits& limits);

}  // namespace supra

#endif  // SUPRA_ENGINE_SERVING_REQUEST_VALIDATION_H_

#include "engine/serving/request_validation.h"

#include "absl/strings/str_cat.h"
#include "engine/serving/session_id.h"
#include "engine/util/status_macros.h"

namespace supra {

absl::Status ValidateRequest(const GenerateRequest& request, const RequestLimits& limits) {
  if (request.session_id) RETURN_IF_ERROR(ValidateSessionId(*request.session_id));
  RETURN_IF_ERROR(ValidateSamplingParams(request.sampling));
  if (request.sampling.penalty_window > limits.history_tail_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("penalty_window must be <= ", limits.history_tail_tokens,
                                                   ", got ", request.sampling.penalty_window));
  }
  if (request.max_tokens && (*request.max_tokens < 1 || *request.max_tokens > limits.max_tokens_limit)) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens must be in [1, ", limits.max_tokens_limit,
                                                   "], got ", *request.max_tokens));
  }
  if (request.top_logprobs && (*request.top_logprobs < 0 || *request.top_logprobs > limits.max_top_logprobs)) {
    return absl::InvalidArgumentError(absl::StrCat("top_logprobs must be in [0, ", limits.max_top_logprobs,
                                                   "], got ", *request.top_logprobs));
  }
  if (static_cast<int>(request.stop_strings.size()) > limits.max_stop_strings) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", limits.max_stop_strings, " stop strings"));
  }
  for (const std::string& stop : request.stop_strings) {
    if (stop.empty()) return absl::InvalidArgumentError("stop strings must not be empty");
  }
  for (const int32_t id : request.stop_token_ids) {
    if (id < 0 || id >= limits.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("stop_token_ids: unknown token id ", id));
    }
  }
  if (const auto* ids = std::get_if<std::vector<int32_t>>(&request.prompt)) {
    for (size_t i = 0; i < ids->size(); ++i) {
      if ((*ids)[i] < 0 || (*ids)[i] >= limits.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("prompt_tokens[", i, "]: unknown token id ", (*ids)[i],
                                                       " (vocabulary size ", limits.vocab_size, ")"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace supra

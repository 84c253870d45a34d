#include "engine/serving/request_validation.h"

#include "absl/strings/str_cat.h"
#include "engine/serving/session_id.h"
#include "engine/util/error_detail.h"
#include "engine/util/status_macros.h"

namespace supra {

absl::Status ValidateRequest(const GenerateRequest& request, const RequestLimits& limits) {
  if (request.session_id) RETURN_IF_ERROR(ValidateSessionId(*request.session_id));
  RETURN_IF_ERROR(ValidateSamplingParams(request.sampling));
  if (request.sampling.penalty_window > limits.history_tail_tokens) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("sampling.penalty_window must be <= ", limits.history_tail_tokens, ", got ",
                                  request.sampling.penalty_window),
                     "INVALID_SAMPLING", "sampling.penalty_window");
  }
  if (request.max_tokens && (*request.max_tokens < 1 || *request.max_tokens > limits.max_tokens_limit)) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("max_tokens must be in [1, ", limits.max_tokens_limit, "], got ",
                                  *request.max_tokens),
                     "INVALID_MAX_TOKENS", "max_tokens");
  }
  if (request.top_logprobs && (*request.top_logprobs < 0 || *request.top_logprobs > limits.max_top_logprobs)) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("logprobs must be in [0, ", limits.max_top_logprobs, "], got ",
                                  *request.top_logprobs),
                     "INVALID_LOGPROBS", "logprobs");
  }
  if (static_cast<int>(request.stop_strings.size()) > limits.max_stop_strings) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("stop has ", request.stop_strings.size(), " entries, at most ",
                                  limits.max_stop_strings),
                     "INVALID_STOP", "stop");
  }
  if (static_cast<int>(request.stop_token_ids.size()) > limits.max_stop_strings) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("stop_token_ids has ", request.stop_token_ids.size(), " entries, at most ",
                                  limits.max_stop_strings),
                     "INVALID_STOP", "stop_token_ids");
  }
  for (size_t i = 0; i < request.stop_strings.size(); ++i) {
    if (request.stop_strings[i].empty()) {
      return MakeError(absl::StatusCode::kInvalidArgument, absl::StrCat("stop[", i, "] is empty"), "INVALID_STOP",
                       absl::StrCat("stop[", i, "]"));
    }
  }
  for (size_t i = 0; i < request.stop_token_ids.size(); ++i) {
    const int32_t id = request.stop_token_ids[i];
    if (id < 0 || id >= limits.vocab_size) {
      return MakeError(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("stop_token_ids[", i, "]: unknown token id ", id, " (vocabulary size ",
                                    limits.vocab_size, ")"),
                       "UNKNOWN_TOKEN", absl::StrCat("stop_token_ids[", i, "]"));
    }
  }
  if (const auto* ids = std::get_if<std::vector<int32_t>>(&request.prompt)) {
    for (size_t i = 0; i < ids->size(); ++i) {
      if ((*ids)[i] < 0 || (*ids)[i] >= limits.vocab_size) {
        return MakeError(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("tokens.ids[", i, "]: unknown token id ", (*ids)[i], " (vocabulary size ",
                                      limits.vocab_size, ")"),
                         "UNKNOWN_TOKEN", absl::StrCat("tokens.ids[", i, "]"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace supra

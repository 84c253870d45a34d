#include "server/convert.h"

#include "absl/strings/str_cat.h"
#include "engine/serving/session_id.h"
#include "engine/util/error_detail.h"
#include "google/protobuf/util/time_util.h"

namespace supra::server {

absl::Status ValidateRequestId(const std::string& id) {
  if (id.size() > 128) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("request_id has ", id.size(), " characters, at most 128"), "INVALID_REQUEST_ID",
                     "request_id");
  }
  for (const char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return MakeError(absl::StatusCode::kInvalidArgument, "request_id must be printable ASCII without spaces",
                       "INVALID_REQUEST_ID", "request_id");
    }
  }
  return absl::OkStatus();
}

std::string NewRequestId() { return NewRandomId("r_"); }

absl::StatusOr<GenerateRequest> ToEngine(const v1::GenerateRequest& request, const std::string& tenant,
                                         absl::Time deadline) {
  GenerateRequest out;
  out.tenant = tenant;
  switch (request.prompt_case()) {
    case v1::GenerateRequest::kText:
      out.prompt = request.text();
      break;
    case v1::GenerateRequest::kTokens:
      out.prompt = std::vector<int32_t>(request.tokens().ids().begin(), request.tokens().ids().end());
      break;
    default:
      return MakeError(absl::StatusCode::kInvalidArgument, "prompt is required: set text or tokens",
                       "INVALID_PROMPT", "prompt");
  }
  if (request.has_session_id()) {
    out.session_id = request.session_id();
    if (request.has_expected_session_length()) out.expected_session_length = request.expected_session_length();
  }
  out.create_session = request.create_session();
  const v1::SamplingParams& s = request.sampling();
  if (s.has_temperature()) out.sampling.temperature = s.temperature();
  if (s.has_top_p()) out.sampling.top_p = s.top_p();
  if (s.has_top_k()) out.sampling.top_k = s.top_k();
  if (s.has_min_p()) out.sampling.min_p = s.min_p();
  if (s.has_repetition_penalty()) out.sampling.repetition_penalty = s.repetition_penalty();
  if (s.has_presence_penalty()) out.sampling.presence_penalty = s.presence_penalty();
  if (s.has_frequency_penalty()) out.sampling.frequency_penalty = s.frequency_penalty();
  if (s.has_penalty_window()) out.sampling.penalty_window = s.penalty_window();
  out.sampling.seed = s.has_seed() ? s.seed() : NewRandomU64();
  if (request.has_max_tokens()) out.max_tokens = request.max_tokens();
  out.stop_strings.assign(request.stop().begin(), request.stop().end());
  out.stop_token_ids.assign(request.stop_token_ids().begin(), request.stop_token_ids().end());
  out.ignore_eos = request.ignore_eos();
  if (request.has_logprobs()) out.top_logprobs = request.logprobs();
  out.deadline = deadline;
  return out;
}

NewSession ToEngine(const v1::CreateSessionRequest& request) {
  NewSession spec;
  if (request.has_session_id()) spec.id = request.session_id();
  switch (request.system_prompt_case()) {
    case v1::CreateSessionRequest::kText:
      spec.system_prompt = request.text();
      break;
    case v1::CreateSessionRequest::kTokens:
      spec.system_prompt = std::vector<int32_t>(request.tokens().ids().begin(), request.tokens().ids().end());
      break;
    default:
      break;
  }
  return spec;
}

void ToProto(const SessionInfo& info, v1::Session* out) {
  out->set_session_id(info.id);
  out->set_length(info.length);
  out->set_tier(info.tier == "device" ? v1::SESSION_TIER_DEVICE : v1::SESSION_TIER_HOST);
  out->set_state_bytes(info.state_bytes);
  out->set_busy(info.busy);
  *out->mutable_create_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(info.created));
  *out->mutable_last_use_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(info.last_used));
}

void ToProto(const Logprobs& lp, int32_t token, v1::TokenLogprob* out) {
  out->set_token_id(token);
  out->set_logprob(lp.chosen);
  for (const TokenLogprob& t : lp.top) {
    v1::TopLogprob* top = out->add_top();
    top->set_token_id(t.token);
    top->set_logprob(t.logprob);
  }
}

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
      return v1::FINISH_REASON_EOS;
    case FinishReason::kStopString:
      return v1::FINISH_REASON_STOP_STRING;
    case FinishReason::kStopToken:
      return v1::FINISH_REASON_STOP_TOKEN;
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kDeadline:
      return v1::FINISH_REASON_DEADLINE;
    case FinishReason::kError:
      break;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

}  // namespace supra::server

#include "server/generate_reactor.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/convert.h"
#include "server/log.h"
#include "server/status_conversion.h"

namespace supra::server {
namespace {

absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  // No deadline reads as a time point centuries ahead.
  if (deadline - std::chrono::system_clock::now() > std::chrono::hours(24 * 365 * 10)) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

const char* ReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kStopString:
      return "stop_string";
    case FinishReason::kStopToken:
      return "stop_token";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kDeadline:
      return "deadline";
    case FinishReason::kError:
      return "error";
  }
  return "?";
}

}  // namespace

GenerateReactor::GenerateReactor(grpc::CallbackServerContext* context, RequestLoop& loop)
    : context_(context), loop_(loop), start_(absl::Now()) {}

GenerateReactor* GenerateReactor::Start(grpc::CallbackServerContext* context, const v1::GenerateRequest& request,
                                        const std::string& tenant, RequestLoop& loop) {
  auto* reactor = new GenerateReactor(context, loop);  // deleted in OnDone
  reactor->tenant_ = tenant;
  absl::Status status = ValidateRequestId(request.request_id());
  reactor->request_id_ = request.request_id().empty() || !status.ok() ? NewRequestId() : request.request_id();
  if (status.ok()) {
    absl::StatusOr<GenerateRequest> converted = ToEngine(request, tenant, DeadlineOf(*context));
    if (converted.ok()) {
      converted->request_id = reactor->request_id_;
      converted->cancelled = reactor->cancelled_;
      reactor->seed_ = converted->sampling.seed;
      // From here on the loop may call the sink on its thread.
      status = loop.Submit(*std::move(converted), reactor);
    } else {
      status = converted.status();
    }
  }
  if (!status.ok()) {
    LogInfo(absl::StrCat("generate ", reactor->request_id_, " refused: ", status.ToString()));
    std::lock_guard<std::mutex> lock(reactor->mu_);
    reactor->refused_ = ToGrpcStatus(status);
    reactor->AdvanceLocked();
  }
  return reactor;
}

void GenerateReactor::OnTokens(absl::Span<const int32_t> ids, std::string_view text,
                               absl::Span<const Logprobs> logprobs) {
  std::lock_guard<std::mutex> lock(mu_);
  // Kept even when the client is gone: Retract must count what was not sent.
  v1::Chunk* chunk = next_.mutable_chunk();
  for (size_t i = 0; i < ids.size(); ++i) {
    chunk->add_token_ids(ids[i]);
    if (i < logprobs.size()) ToProto(logprobs[i], ids[i], chunk->add_logprobs());
  }
  chunk->mutable_text()->append(text.data(), text.size());
  AdvanceLocked();
}

void GenerateReactor::OnFinish(const FinishInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  finish_ = info;
  LogInfo(absl::StrCat("generate ", request_id_, " tenant=", tenant_.empty() ? "-" : tenant_,
                       " session=", info.session_id.empty() ? "-" : info.session_id, " finish=",
                       ReasonName(info.reason), " prompt_tokens=", info.usage.prompt_tokens,
                       " resumed_tokens=", info.usage.resumed_tokens, " generated_tokens=",
                       info.usage.generated_tokens, " ms=", absl::ToDoubleMilliseconds(absl::Now() - start_),
                       info.status.ok() ? "" : " status=", info.status.ok() ? "" : info.status.ToString()));
  AdvanceLocked();
}

bool GenerateReactor::Ready() {
  std::lock_guard<std::mutex> lock(mu_);
  return !client_gone_ && !next_.has_chunk();
}

int GenerateReactor::Retract() {
  std::lock_guard<std::mutex> lock(mu_);
  const int unsent = next_.has_chunk() ? next_.chunk().token_ids_size() : 0;
  next_.Clear();
  return unsent;
}

void GenerateReactor::OnWriteDone(bool ok) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    write_in_flight_ = false;
    if (!ok && !client_gone_) {
      client_gone_ = true;
      cancelled_->store(true);
    }
    AdvanceLocked();
    wake = !write_in_flight_ || client_gone_;
  }
  if (wake) loop_.Wake();
}

void GenerateReactor::OnCancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    client_gone_ = true;
    cancelled_->store(true);
    AdvanceLocked();
  }
  loop_.Wake();
}

void GenerateReactor::OnDone() { delete this; }

grpc::Status GenerateReactor::FinalStatusLocked() const {
  const FinishInfo& info = *finish_;
  switch (info.reason) {
    case FinishReason::kCancelled:
      // The client's own cancel ends the call CANCELLED; a turn the server
      // cut (drain) ends normally, with a Final saying so.
      if (client_gone_) {
        return context_->deadline() <= std::chrono::system_clock::now()
                   ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded")
                   : grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client");
      }
      return grpc::Status::OK;
    case FinishReason::kDeadline:
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded");
    case FinishReason::kError:
      return ToGrpcStatus(info.status);
    default:
      return grpc::Status::OK;
  }
}

void GenerateReactor::AdvanceLocked() {
  if (finish_called_ || write_in_flight_) return;
  if (refused_) {
    finish_called_ = true;
    Finish(*refused_);
    return;
  }
  if (!client_gone_ && next_.has_chunk()) {
    writing_ = std::move(next_);
    next_.Clear();
    writing_.set_request_id(request_id_);
    write_in_flight_ = true;
    StartWrite(&writing_);
    return;
  }
  if (!finish_) return;
  const grpc::Status status = FinalStatusLocked();
  if (status.ok() && !client_gone_ && !final_written_) {
    const FinishInfo& info = *finish_;
    writing_.Clear();
    writing_.set_request_id(request_id_);
    v1::Final* final = writing_.mutable_final();
    final->mutable_usage()->set_prompt_tokens(static_cast<int32_t>(info.usage.prompt_tokens));
    final->mutable_usage()->set_resumed_tokens(info.usage.resumed_tokens);
    final->mutable_usage()->set_generated_tokens(static_cast<int32_t>(info.usage.generated_tokens));
    final->set_finish_reason(ToProto(info.reason));
    if (info.reason == FinishReason::kStopString) final->set_stop_string(info.stop_string);
    if (info.reason == FinishReason::kStopToken) final->set_stop_token_id(info.stop_token);
    final->set_session_id(info.session_id);
    final->set_session_length(info.session_length);
    final->set_seed(seed_);
    final_written_ = true;
    write_in_flight_ = true;
    StartWrite(&writing_);
    return;
  }
  finish_called_ = true;
  Finish(status);
}

}  // namespace supra::server

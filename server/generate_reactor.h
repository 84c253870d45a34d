// One Generate call: a gRPC server-streaming reactor that is also the engine
// request's TokenSink.
//
// Threads. The request loop's thread calls OnTokens/OnFinish/Ready/Retract;
// gRPC's threads call OnWriteDone/OnCancel/OnDone. Neither ever blocks: a
// mutex guards a few fields for microseconds. Tokens become a Chunk; while a
// write is in flight, newer tokens and text merge into the next Chunk. The
// loop does not feed a token the client has not been sent (Ready), so a
// slow reader stalls only its own request and the buffer stays at one
// merged Chunk.
//
// Ending. The reactor calls Finish only after the engine's OnFinish (or
// when Submit refused the request), so the engine never touches a deleted
// sink; OnDone deletes the reactor. A client that cancels or disconnects sets
// the request's cancel flag (OnCancel, or a failed write), which the loop
// sees at its next iteration.
//
// Status of the call: OK with a Final message for eos/stop/length and for a
// turn the server cut (drain: FINISH_REASON_CANCELLED); CANCELLED or
// DEADLINE_EXCEEDED for the client's cancel or deadline; the engine's error
// otherwise, through ToGrpcStatus.
#ifndef SUPRA_SERVER_GENERATE_REACTOR_H_
#define SUPRA_SERVER_GENERATE_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/serving/generate_request.h"
#include "engine/serving/request_loop.h"
#include "supra/v1/inference.pb.h"

namespace supra::server {

class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse>, public TokenSink {
 public:
  // Starts the call: refuses it (Finish with the error) or submits it.
  static GenerateReactor* Start(grpc::CallbackServerContext* context, const v1::GenerateRequest& request,
                                const std::string& tenant, RequestLoop& loop);

  // TokenSink (the loop's thread).
  void OnTokens(absl::Span<const int32_t> ids, std::string_view text, absl::Span<const Logprobs> logprobs) override;
  void OnFinish(const FinishInfo& info) override;
  bool Ready() override;
  int Retract() override;

  // ServerWriteReactor (gRPC's threads).
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  GenerateReactor(grpc::CallbackServerContext* context, RequestLoop& loop);
  // Starts the next write, the Final message or Finish, whichever is due.
  void AdvanceLocked();
  grpc::Status FinalStatusLocked() const;

  grpc::CallbackServerContext* const context_;
  RequestLoop& loop_;
  const absl::Time start_;
  std::string request_id_;
  std::string tenant_;
  uint64_t seed_ = 0;
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);

  std::mutex mu_;
  v1::GenerateResponse next_;     // merged Chunk not yet written (has_chunk() once something arrived)
  v1::GenerateResponse writing_;  // the message in flight
  bool write_in_flight_ = false;
  bool client_gone_ = false;      // OnCancel or a failed write: nothing more is written
  bool final_written_ = false;
  bool finish_called_ = false;
  std::optional<FinishInfo> finish_;  // the engine's OnFinish arrived
  std::optional<grpc::Status> refused_;  // refused before reaching the engine
  bool first_token_seen_ = false;
};

}  // namespace supra::server

#endif  // SUPRA_SERVER_GENERATE_REACTOR_H_

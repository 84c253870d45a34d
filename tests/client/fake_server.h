// A scripted supra.v1 server on a loopback port for the supra-cli tests: it
// records every request and its authorization metadata, answers with canned
// values, and fails every call with `fail_with` when that is set.
#ifndef SUPRA_TESTS_CLIENT_FAKE_SERVER_H_
#define SUPRA_TESTS_CLIENT_FAKE_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "supra/v1/inference.grpc.pb.h"
#include "supra/v1/model.grpc.pb.h"
#include "supra/v1/sessions.grpc.pb.h"

namespace supra::client::test {

// What the fake saw and how it behaves. Guarded by mu.
struct FakeState {
  std::mutex mu;

  // Every call, in order: method name ("Generate", "GetSession", ...) and the
  // value of its authorization metadata ("" when absent). ImportSession adds
  // "ImportSession" for its first message and "ImportSession+" for each later one.
  std::vector<std::string> methods;
  std::vector<std::string> authorizations;

  std::vector<supra::v1::GenerateRequest> generate_requests;
  std::vector<supra::v1::CreateSessionRequest> create_requests;
  std::vector<supra::v1::GetSessionRequest> get_requests;
  std::vector<supra::v1::ListSessionsRequest> list_requests;
  std::vector<supra::v1::ForkSessionRequest> fork_requests;
  std::vector<supra::v1::DeleteSessionRequest> delete_requests;
  std::vector<supra::v1::ExportSessionRequest> export_requests;
  // Every message of every ImportSession call, in order.
  std::vector<supra::v1::ImportSessionRequest> import_messages;
  // ExportSession streams these pieces (the session in the first message).
  std::vector<std::string> snapshot_pieces = {"snap-", "shot-", "bytes"};
  std::vector<supra::v1::TokenizeRequest> tokenize_requests;
  std::vector<supra::v1::DetokenizeRequest> detokenize_requests;

  // Non-OK: every RPC fails with this status (after recording the request).
  grpc::Status fail_with = grpc::Status::OK;

  // Generate streams these chunk texts (token ids 10, 11, ...), then a Final
  // (FINISH_REASON_LENGTH, 2 prompt tokens, seed 42 unless given).
  std::vector<std::string> chunk_texts = {"Hel", "lo", " world"};
  // Set: edits the Final before it is sent.
  std::function<void(supra::v1::Final*)> edit_final;
  // Session lengths the fake keeps: Generate adds 2 + the chunk count.
  std::map<std::string, int64_t> session_lengths;
  int created_sessions = 0;

  // Set: after the first chunk Generate calls this, then streams nothing
  // more and waits (bounded) until the client cancels.
  std::function<void()> after_first_chunk;

  // ListSessions pages through these ids, `page_size` (default 2) at a time;
  // the page token is the index of the next id.
  std::vector<std::string> listed_ids;

  int calls() {
    std::lock_guard<std::mutex> lock(mu);
    return static_cast<int>(methods.size());
  }
};

class FakeServer {
 public:
  // Listens on 127.0.0.1 with `credentials` (null: plaintext).
  explicit FakeServer(std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  std::string target() const { return target_; }
  FakeState& state() { return *state_; }
  // Sets the grpc.health.v1 status of `service` ("" is the whole server).
  void SetServing(const std::string& service, bool serving);

 private:
  std::shared_ptr<FakeState> state_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
};

// A status carrying a supra.v1.RpcStatus with one ErrorInfo, as errors.proto
// describes.
grpc::Status MakeError(grpc::StatusCode code, const std::string& message, const std::string& reason,
                       const std::string& field, const std::map<std::string, std::string>& metadata = {},
                       int64_t retry_after_ms = -1);

}  // namespace supra::client::test

#endif  // SUPRA_TESTS_CLIENT_FAKE_SERVER_H_

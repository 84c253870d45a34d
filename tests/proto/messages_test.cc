// The generated supra.v1 messages: round trips keep values and the presence of
// optional fields, and the fields whose zero differs from "unset" have
// presence (the convention common.proto states).
#include <string>

#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "supra/v1/errors.pb.h"
#include "supra/v1/inference.pb.h"
#include "supra/v1/model.pb.h"
#include "supra/v1/sessions.pb.h"

namespace supra::v1 {
namespace {

template <typename Message>
Message RoundTrip(const Message& in) {
  std::string wire;
  EXPECT_TRUE(in.SerializeToString(&wire));
  Message out;
  EXPECT_TRUE(out.ParseFromString(wire));
  return out;
}

TEST(ProtoMessagesTest, GenerateRequestKeepsExplicitZerosApartFromUnset) {
  GenerateRequest request;
  request.set_request_id("req-1");
  request.mutable_tokens()->add_ids(1);
  request.mutable_tokens()->add_ids(42);
  request.set_session_id("chat-7");
  request.set_expected_session_length(0);
  request.mutable_sampling()->set_temperature(0.0f);  // greedy, not "default"
  request.mutable_sampling()->set_top_k(0);
  request.mutable_sampling()->set_seed(12345);
  request.add_stop("\n\n");
  request.add_stop_token_ids(2);
  request.set_ignore_eos(true);
  request.set_logprobs(0);  // chosen token only, not "none"

  const GenerateRequest out = RoundTrip(request);
  EXPECT_EQ(out.request_id(), "req-1");
  ASSERT_EQ(out.prompt_case(), GenerateRequest::kTokens);
  EXPECT_EQ(out.tokens().ids_size(), 2);
  EXPECT_EQ(out.tokens().ids(1), 42);
  ASSERT_TRUE(out.has_session_id());
  EXPECT_EQ(out.session_id(), "chat-7");
  EXPECT_TRUE(out.has_expected_session_length());
  EXPECT_EQ(out.expected_session_length(), 0);
  EXPECT_FALSE(out.has_max_tokens());
  EXPECT_TRUE(out.has_logprobs());
  EXPECT_EQ(out.logprobs(), 0);

  const SamplingParams& sampling = out.sampling();
  EXPECT_TRUE(sampling.has_temperature());
  EXPECT_EQ(sampling.temperature(), 0.0f);
  EXPECT_TRUE(sampling.has_top_k());
  EXPECT_EQ(sampling.top_k(), 0);
  EXPECT_TRUE(sampling.has_seed());
  EXPECT_EQ(sampling.seed(), 12345u);
  EXPECT_FALSE(sampling.has_top_p());
  EXPECT_FALSE(sampling.has_min_p());
  EXPECT_FALSE(sampling.has_repetition_penalty());
  EXPECT_FALSE(sampling.has_penalty_window());

  EXPECT_EQ(out.stop_size(), 1);
  EXPECT_EQ(out.stop(0), "\n\n");
  EXPECT_EQ(out.stop_token_ids(0), 2);
  EXPECT_TRUE(out.ignore_eos());
}

TEST(ProtoMessagesTest, UnsetOptionalsStayUnset) {
  GenerateRequest request;
  request.set_text("Hello");
  const GenerateRequest out = RoundTrip(request);
  EXPECT_EQ(out.prompt_case(), GenerateRequest::kText);
  EXPECT_EQ(out.text(), "Hello");
  EXPECT_FALSE(out.has_session_id());
  EXPECT_FALSE(out.has_expected_session_length());
  EXPECT_FALSE(out.has_max_tokens());
  EXPECT_FALSE(out.has_logprobs());
  EXPECT_FALSE(out.has_sampling());
  EXPECT_FALSE(out.sampling().has_temperature());
}

TEST(ProtoMessagesTest, GenerateResponseChunkAndFinalRoundTrip) {
  GenerateResponse chunk_message;
  chunk_message.set_request_id("req-2");
  Chunk* chunk = chunk_message.mutable_chunk();
  chunk->add_token_ids(306);
  chunk->set_text(" caf\u00e9");
  TokenLogprob* logprob = chunk->add_logprobs();
  logprob->set_token_id(306);
  logprob->set_logprob(-0.25f);
  TopLogprob* top = logprob->add_top();
  top->set_token_id(17);
  top->set_logprob(-1.5f);

  const GenerateResponse chunk_out = RoundTrip(chunk_message);
  ASSERT_EQ(chunk_out.event_case(), GenerateResponse::kChunk);
  EXPECT_EQ(chunk_out.chunk().text(), " caf\u00e9");
  ASSERT_EQ(chunk_out.chunk().logprobs_size(), 1);
  EXPECT_EQ(chunk_out.chunk().logprobs(0).logprob(), -0.25f);
  EXPECT_EQ(chunk_out.chunk().logprobs(0).top(0).token_id(), 17);

  GenerateResponse final_message;
  final_message.set_request_id("req-2");
  Final* final = final_message.mutable_final();
  final->mutable_usage()->set_prompt_tokens(5);
  final->mutable_usage()->set_resumed_tokens(1000000);
  final->mutable_usage()->set_generated_tokens(3);
  final->set_finish_reason(FINISH_REASON_STOP_STRING);
  final->set_stop_string("\n\n");
  final->set_session_id("chat-7");
  final->set_session_length(1000008);
  final->set_seed(99);

  const GenerateResponse final_out = RoundTrip(final_message);
  ASSERT_EQ(final_out.event_case(), GenerateResponse::kFinal);
  EXPECT_EQ(final_out.final().finish_reason(), FINISH_REASON_STOP_STRING);
  ASSERT_EQ(final_out.final().matched_stop_case(), Final::kStopString);
  EXPECT_EQ(final_out.final().stop_string(), "\n\n");
  EXPECT_EQ(final_out.final().usage().resumed_tokens(), 1000000);
  EXPECT_EQ(final_out.final().session_length(), 1000008);
  EXPECT_EQ(final_out.final().seed(), 99u);
}

TEST(ProtoMessagesTest, ErrorInfoTravelsPackedInRpcStatus) {
  ErrorInfo info;
  info.set_reason("SESSION_LENGTH_MISMATCH");
  info.set_field("expected_session_length");
  (*info.mutable_metadata())["actual_length"] = "17";
  info.mutable_retry_after()->set_nanos(250000000);

  RpcStatus status;
  status.set_code(9);  // FAILED_PRECONDITION
  status.set_message("session chat-7 has length 17, expected 12");
  ASSERT_TRUE(status.add_details()->PackFrom(info));

  const RpcStatus out = RoundTrip(status);
  ASSERT_EQ(out.details_size(), 1);
  EXPECT_EQ(out.details(0).type_url(), "type.googleapis.com/supra.v1.ErrorInfo");
  ErrorInfo info_out;
  ASSERT_TRUE(out.details(0).UnpackTo(&info_out));
  EXPECT_EQ(info_out.reason(), "SESSION_LENGTH_MISMATCH");
  EXPECT_EQ(info_out.field(), "expected_session_length");
  EXPECT_EQ(info_out.metadata().at("actual_length"), "17");
  ASSERT_TRUE(info_out.has_retry_after());
  EXPECT_EQ(info_out.retry_after().nanos(), 250000000);

  ErrorInfo no_hint;
  no_hint.set_reason("SESSION_BUSY");
  EXPECT_FALSE(RoundTrip(no_hint).has_retry_after());
}

TEST(ProtoMessagesTest, SessionMessagesRoundTrip) {
  ForkSessionRequest fork;
  fork.set_source_session_id("a");
  fork.set_expected_length(0);
  const ForkSessionRequest fork_out = RoundTrip(fork);
  EXPECT_TRUE(fork_out.has_expected_length());
  EXPECT_FALSE(fork_out.has_new_session_id());

  DeleteSessionRequest deletion;
  deletion.set_session_id("a");
  EXPECT_FALSE(RoundTrip(deletion).has_expected_length());

  CreateSessionRequest create;
  create.set_text("You are terse.");
  const CreateSessionRequest create_out = RoundTrip(create);
  EXPECT_EQ(create_out.system_prompt_case(), CreateSessionRequest::kText);
  EXPECT_FALSE(create_out.has_session_id());

  GetSessionResponse get;
  Session* session = get.mutable_session();
  session->set_session_id("a");
  session->set_length(12);
  session->set_tier(SESSION_TIER_DISK);
  session->set_state_bytes(int64_t{64} << 20);
  session->mutable_create_time()->set_seconds(1700000000);
  session->mutable_last_use_time()->set_seconds(1700000100);
  const GetSessionResponse get_out = RoundTrip(get);
  EXPECT_EQ(get_out.session().tier(), SESSION_TIER_DISK);
  EXPECT_EQ(get_out.session().state_bytes(), int64_t{64} << 20);
  EXPECT_EQ(get_out.session().last_use_time().seconds(), 1700000100);

  ListSessionsResponse list;
  list.add_sessions()->set_session_id("a");
  list.set_next_page_token("opaque");
  EXPECT_EQ(RoundTrip(list).next_page_token(), "opaque");
}

// Every field where unset must differ from zero carries presence; dropping an
// `optional` from the .proto fails here.
TEST(ProtoMessagesTest, FieldsWithMeaningfulZeroHavePresence) {
  const google::protobuf::Descriptor* sampling = SamplingParams::descriptor();
  ASSERT_GT(sampling->field_count(), 0);
  for (int i = 0; i < sampling->field_count(); ++i) {
    EXPECT_TRUE(sampling->field(i)->has_presence()) << sampling->field(i)->name();
  }
  const google::protobuf::Descriptor* request = GenerateRequest::descriptor();
  for (const char* name : {"session_id", "expected_session_length", "max_tokens", "logprobs"}) {
    const google::protobuf::FieldDescriptor* field = request->FindFieldByName(name);
    ASSERT_NE(field, nullptr) << name;
    EXPECT_TRUE(field->has_presence()) << name;
  }
  EXPECT_TRUE(ForkSessionRequest::descriptor()->FindFieldByName("expected_length")->has_presence());
  EXPECT_TRUE(DeleteSessionRequest::descriptor()->FindFieldByName("expected_length")->has_presence());
  EXPECT_TRUE(CreateSessionRequest::descriptor()->FindFieldByName("session_id")->has_presence());
}

TEST(ProtoMessagesTest, EnumsStartWithUnspecified) {
  EXPECT_EQ(FinishReason_Name(static_cast<FinishReason>(0)), "FINISH_REASON_UNSPECIFIED");
  EXPECT_EQ(SessionTier_Name(static_cast<SessionTier>(0)), "SESSION_TIER_UNSPECIFIED");
}

}  // namespace
}  // namespace supra::v1

#include "client/generate_command.h"

#include <istream>
#include <iterator>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "client/interrupter.h"
#include "client/proto_json.h"
#include "nlohmann/json.hpp"
#include "supra/v1/inference.grpc.pb.h"

namespace supra::client {
namespace {

using supra::v1::Final;
using supra::v1::GenerateRequest;
using supra::v1::GenerateResponse;
using supra::v1::InferenceService;

// Flags that shape one turn, shared by generate and chat.
std::vector<FlagSpec> TurnFlagSpecs() {
  return {
      {"session", "ID", "continue this session (see sessions create)"},
      {"create-session", "", "create the session if it does not exist (a server-made id without --session)"},
      {"max-tokens", "N", "most tokens to generate (default: the server's)"},
      {"temperature", "X", "0 is greedy (default 1.0)"},
      {"top-p", "X", "nucleus sampling, in (0, 1] (default 1.0)"},
      {"top-k", "N", "keep the N most likely tokens, 0 disables (default 0)"},
      {"min-p", "X", "drop tokens below X times the top probability (default 0)"},
      {"repetition-penalty", "X", "CTRL-style penalty, 1 disables (default 1.0)"},
      {"presence-penalty", "X", "in [-2, 2] (default 0)"},
      {"frequency-penalty", "X", "in [-2, 2] (default 0)"},
      {"penalty-window", "N", "recent tokens the penalties look at (default 256)"},
      {"seed", "N", "sampling seed, to reproduce a turn (default: the server picks one)"},
      {"stop", "STR", "end the turn when the reply contains STR", true},
      {"stop-token", "ID", "end the turn after sampling token ID", true},
      {"ignore-eos", "", "do not end the turn at EOS"},
      {"logprobs", "N", "log-probabilities of each token and its N best alternatives"},
      {"request-id", "ID", "request id for the server's logs (default: the server makes one)"},
      {"help", "", "show help"},
  };
}

std::optional<std::string> BadValue(const std::string& flag, const std::string& value, const std::string& want) {
  return "--" + flag + " wants " + want + ", got '" + value + "'";
}

// Copies the turn flags into `request`, setting only the optional fields the
// user gave (unset selects the server's default, which differs from zero).
std::optional<std::string> ApplyTurnFlags(const ParsedFlags& flags, GenerateRequest* request) {
  supra::v1::SamplingParams& sampling = *request->mutable_sampling();
  struct FloatFlag {
    const char* name;
    void (supra::v1::SamplingParams::*set)(float);
  };
  for (const FloatFlag& flag : {FloatFlag{"temperature", &supra::v1::SamplingParams::set_temperature},
                                FloatFlag{"top-p", &supra::v1::SamplingParams::set_top_p},
                                FloatFlag{"min-p", &supra::v1::SamplingParams::set_min_p},
                                FloatFlag{"repetition-penalty", &supra::v1::SamplingParams::set_repetition_penalty},
                                FloatFlag{"presence-penalty", &supra::v1::SamplingParams::set_presence_penalty},
                                FloatFlag{"frequency-penalty", &supra::v1::SamplingParams::set_frequency_penalty}}) {
    if (const std::string* text = flags.Get(flag.name)) {
      const std::optional<float> value = ParseFloat(*text);
      if (!value.has_value()) return BadValue(flag.name, *text, "a finite number");
      (sampling.*flag.set)(*value);
    }
  }
  if (const std::string* text = flags.Get("top-k")) {
    const std::optional<int32_t> value = ParseInt32(*text);
    if (!value.has_value()) return BadValue("top-k", *text, "an integer");
    sampling.set_top_k(*value);
  }
  if (const std::string* text = flags.Get("penalty-window")) {
    const std::optional<int32_t> value = ParseInt32(*text);
    if (!value.has_value()) return BadValue("penalty-window", *text, "an integer");
    sampling.set_penalty_window(*value);
  }
  if (const std::string* text = flags.Get("seed")) {
    const std::optional<uint64_t> value = ParseUint64(*text);
    if (!value.has_value()) return BadValue("seed", *text, "an unsigned 64-bit integer");
    sampling.set_seed(*value);
  }
  if (const std::string* text = flags.Get("max-tokens")) {
    const std::optional<int32_t> value = ParseInt32(*text);
    if (!value.has_value()) return BadValue("max-tokens", *text, "an integer");
    request->set_max_tokens(*value);
  }
  if (const std::string* text = flags.Get("logprobs")) {
    const std::optional<int32_t> value = ParseInt32(*text);
    if (!value.has_value()) return BadValue("logprobs", *text, "an integer");
    request->set_logprobs(*value);
  }
  for (const std::string& stop : flags.GetAll("stop")) {
    if (stop.empty()) return std::string("--stop wants a non-empty string");
    request->add_stop(stop);
  }
  for (const std::string& text : flags.GetAll("stop-token")) {
    const std::optional<int32_t> value = ParseInt32(text);
    if (!value.has_value()) return BadValue("stop-token", text, "a token id");
    request->add_stop_token_ids(*value);
  }
  request->set_ignore_eos(flags.Has("ignore-eos"));
  if (const std::string* id = flags.Get("request-id")) request->set_request_id(*id);
  if (const std::string* session = flags.Get("session")) {
    if (session->empty()) return std::string("--session wants a session id");
    request->set_session_id(*session);
  }
  request->set_create_session(flags.Has("create-session"));
  if (sampling.ByteSizeLong() == 0) request->clear_sampling();
  return std::nullopt;
}

std::string FinishReasonName(supra::v1::FinishReason reason) {
  std::string name = supra::v1::FinishReason_Name(reason);
  const std::string prefix = "FINISH_REASON_";
  if (name.rfind(prefix, 0) == 0) name.erase(0, prefix.size());
  return name.empty() ? std::to_string(static_cast<int>(reason)) : name;
}

void PrintSummary(const Final& final, std::ostream& err) {
  err << "finish_reason=" << FinishReasonName(final.finish_reason());
  if (final.has_stop_string()) {
    // Quoted and escaped as a JSON string: a stop string is often "\n" or similar.
    err << " stop_string=" << ToJsonLine(nlohmann::json(final.stop_string()));
  }
  if (final.has_stop_token_id()) err << " stop_token_id=" << final.stop_token_id();
  err << " prompt_tokens=" << final.usage().prompt_tokens() << " resumed_tokens=" << final.usage().resumed_tokens()
      << " generated_tokens=" << final.usage().generated_tokens();
  if (!final.session_id().empty()) err << " session_id=" << final.session_id();
  err << " session_length=" << final.session_length() << " seed=" << final.seed() << "\n";
}

void PrintLogprobs(const std::vector<supra::v1::TokenLogprob>& logprobs, std::ostream& err) {
  if (logprobs.empty()) return;
  err << "logprobs (token logprob [top: token:logprob ...]):\n";
  for (const supra::v1::TokenLogprob& entry : logprobs) {
    err << "  " << entry.token_id() << " " << entry.logprob();
    if (entry.top_size() > 0) {
      err << " [top:";
      for (const supra::v1::TopLogprob& top : entry.top()) err << " " << top.token_id() << ":" << top.logprob();
      err << "]";
    }
    err << "\n";
  }
}

struct TurnOptions {
  bool summary = true;  // print the Final summary to stderr (text mode)
};

// Runs one Generate call, streaming its output. Returns the exit code and
// fills *final on success.
int RunTurn(Invocation& invocation, InferenceService::Stub& stub, const GenerateRequest& request,
            const TurnOptions& turn, Final* final) {
  grpc::ClientContext context;
  invocation.PrepareContext(&context);
  ScopedCancellation cancellation(invocation.interrupter(), &context);
  std::unique_ptr<grpc::ClientReader<GenerateResponse>> reader = stub.Generate(&context, request);

  std::ostream& out = invocation.out();
  bool have_final = false;
  bool printed = false;
  char last_char = '\n';
  std::vector<supra::v1::TokenLogprob> logprobs;
  GenerateResponse response;
  while (reader->Read(&response)) {
    if (invocation.json()) {
      out << ToJsonLine(response) << "\n";
      out.flush();
    } else if (response.has_chunk() && !response.chunk().text().empty()) {
      out << response.chunk().text();
      out.flush();
      printed = true;
      last_char = response.chunk().text().back();
    }
    if (response.has_chunk()) {
      logprobs.insert(logprobs.end(), response.chunk().logprobs().begin(), response.chunk().logprobs().end());
    } else if (response.has_final()) {
      *final = response.final();
      have_final = true;
    }
  }
  const grpc::Status status = reader->Finish();
  if (printed && last_char != '\n') {
    out << "\n";
    out.flush();
  }
  if (!status.ok()) {
    if (!invocation.json() && printed && invocation.interrupted()) {
      invocation.err() << "supra-cli: the session keeps the text streamed so far\n";
    }
    return invocation.ReportRpcError(status);
  }
  if (!have_final) {
    return invocation.ReportRpcError(
        grpc::Status(grpc::StatusCode::INTERNAL, "the stream ended without a Final message"));
  }
  if (!invocation.json() && turn.summary) {
    PrintSummary(*final, invocation.err());
    PrintLogprobs(logprobs, invocation.err());
  }
  return kExitOk;
}

}  // namespace

const std::vector<FlagSpec>& GenerateFlagSpecs() {
  static const std::vector<FlagSpec> specs = [] {
    std::vector<FlagSpec> list = TurnFlagSpecs();
    list.insert(list.begin() + 2,
                {{"expected-length", "N", "fail (FAILED_PRECONDITION) unless the session has N tokens"},
                 {"tokens", "IDS", "the prompt as token ids, e.g. 1,415,302 (no BOS added)"}});
    return list;
  }();
  return specs;
}

const std::vector<FlagSpec>& ChatFlagSpecs() {
  static const std::vector<FlagSpec> specs = TurnFlagSpecs();
  return specs;
}

int RunGenerate(Invocation& invocation, const ParsedFlags& flags) {
  GenerateRequest request;
  if (auto error = ApplyTurnFlags(flags, &request)) return invocation.UsageError(*error);
  if (const std::string* text = flags.Get("expected-length")) {
    const std::optional<int64_t> value = ParseInt64(*text);
    if (!value.has_value()) return invocation.UsageError(*BadValue("expected-length", *text, "an integer"));
    request.set_expected_session_length(*value);
  }
  if (const std::string* text = flags.Get("tokens")) {
    if (!flags.positional().empty()) return invocation.UsageError("give the prompt as --tokens or as text, not both");
    const std::optional<std::vector<int32_t>> ids = ParseTokenList(*text);
    if (!ids.has_value()) return invocation.UsageError(*BadValue("tokens", *text, "comma-separated token ids"));
    for (const int32_t id : *ids) request.mutable_tokens()->add_ids(id);
  } else {
    std::string prompt = TextFromArgumentsOrStdin(invocation, flags.positional());
    if (prompt.empty()) return invocation.UsageError("the prompt is empty (give it as arguments or on stdin)");
    request.set_text(std::move(prompt));
  }

  std::unique_ptr<InferenceService::Stub> stub = InferenceService::NewStub(invocation.channel());
  Final final;
  return RunTurn(invocation, *stub, request, TurnOptions{}, &final);
}

int RunChat(Invocation& invocation, const ParsedFlags& flags) {
  if (!flags.positional().empty()) {
    return invocation.UsageError("chat reads its turns from stdin and takes no arguments");
  }
  GenerateRequest base;
  if (auto error = ApplyTurnFlags(flags, &base)) return invocation.UsageError(*error);
  // Without --session the first turn creates a session with a server-made id.
  const bool create_first = !base.has_session_id() || base.create_session();
  std::optional<int64_t> expected_length;
  bool announced = false;

  std::unique_ptr<InferenceService::Stub> stub = InferenceService::NewStub(invocation.channel());
  std::string line;
  for (bool first = true;;) {
    if (invocation.env().stdin_is_terminal) invocation.err() << "> " << std::flush;
    if (invocation.interrupted() || !std::getline(invocation.in(), line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;

    GenerateRequest request = base;
    request.set_text(line);
    request.set_create_session(first && create_first);
    if (expected_length.has_value()) request.set_expected_session_length(*expected_length);
    Final final;
    const int code = RunTurn(invocation, *stub, request, TurnOptions{.summary = false}, &final);
    if (code != kExitOk) return code;
    if (final.session_id().empty()) {
      return invocation.ReportRpcError(
          grpc::Status(grpc::StatusCode::INTERNAL, "the server named no session for the chat"));
    }
    if (!announced && !invocation.json()) {
      invocation.err() << "session: " << final.session_id() << "\n";
      announced = true;
    }
    // Every later turn continues this session and checks that nothing else
    // advanced it in between.
    base.set_session_id(final.session_id());
    expected_length = final.session_length();
    first = false;
  }
  if (invocation.interrupted()) {
    return invocation.ReportRpcError(grpc::Status(grpc::StatusCode::CANCELLED, "interrupted"));
  }
  return kExitOk;
}

}  // namespace supra::client

// supra-server: the supra.v1 gRPC API over one model. See README.md
// ("Running the server") and `supra-server --help`.
//
// Exit codes: 0 after a clean shutdown (SIGTERM or SIGINT, drained);
// 1 when start-up fails (bad flags, model, token or TLS files, address in
// use), with the reason on stderr; 2 on a second signal during the drain.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/log.h"
#include "server/server.h"

ABSL_FLAG(std::string, model_dir, "", "Model directory (config.json, tokenizer.model, weights). Required.");
ABSL_FLAG(std::string, device, "cpu", "Backend: \"cpu\" or \"cuda\" (optionally \"cuda:N\" for GPU N).");
ABSL_FLAG(std::string, listen, "0.0.0.0:50051", "Address to serve gRPC on, host:port.");
ABSL_FLAG(int32_t, state_slots, 16,
          "Session states kept on the device at once (the rest wait in host memory); also the largest decode batch.");
ABSL_FLAG(int32_t, cpu_threads, 0, "Threads of the CPU backend (0: one per core).");
ABSL_FLAG(int32_t, max_sessions, 1024, "Named sessions kept at most (all tenants together).");
ABSL_FLAG(absl::Duration, session_idle_ttl, absl::Hours(1), "Delete sessions unused for this long.");
ABSL_FLAG(int32_t, max_queued, 256, "Generate requests waiting to start at most; more: RESOURCE_EXHAUSTED.");
ABSL_FLAG(int32_t, default_max_tokens, 256, "max_tokens of a request that sets none.");
ABSL_FLAG(int32_t, max_max_tokens, 4096, "Largest max_tokens a request may ask for.");
ABSL_FLAG(int32_t, max_prompt_tokens, 65536, "Longest prompt, in tokens.");
ABSL_FLAG(int32_t, max_logprobs, 20, "Largest number of alternatives with logprobs.");
ABSL_FLAG(int32_t, prefill_chunk, 512, "Prompt tokens fed per request per scheduler iteration.");
ABSL_FLAG(int32_t, prefill_token_budget, 2048,
          "Prompt tokens fed per scheduler iteration, all requests together (bounds the decode stall).");
ABSL_FLAG(std::string, token_file, "",
          "Bearer tokens: a file of \"<token> <tenant>\" lines. Empty: no authentication.");
ABSL_FLAG(std::string, tls_cert, "", "TLS certificate chain (PEM). With --tls_key, serves TLS.");
ABSL_FLAG(std::string, tls_key, "", "TLS private key (PEM).");
ABSL_FLAG(std::string, tls_client_ca, "", "CA bundle (PEM) that client certificates must chain to (mTLS).");
ABSL_FLAG(int32_t, max_message_bytes, 4 << 20, "Largest gRPC message received or sent.");
ABSL_FLAG(absl::Duration, keepalive_time, absl::Seconds(60), "Ping idle connections this often.");
ABSL_FLAG(absl::Duration, keepalive_timeout, absl::Seconds(20), "Close a connection whose ping is not answered.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(30),
          "On SIGTERM: how long in-flight streams may run on before they are cut.");

namespace {

supra::server::ServerOptions OptionsFromFlags() {
  supra::server::ServerOptions o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.model.dir = absl::GetFlag(FLAGS_model_dir);
  const std::string device = absl::GetFlag(FLAGS_device);
  o.model.backend = device.rfind("cuda", 0) == 0 ? "cuda" : device;
  if (device.rfind("cuda:", 0) == 0) o.model.cuda.device = std::atoi(device.c_str() + 5);
  o.model.cpu.num_slots = o.model.cuda.num_slots = absl::GetFlag(FLAGS_state_slots);
  o.model.cpu.num_threads = absl::GetFlag(FLAGS_cpu_threads);
  o.model.cuda.max_batch = absl::GetFlag(FLAGS_state_slots);
  o.loop.sessions.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  o.loop.sessions.idle_ttl = absl::GetFlag(FLAGS_session_idle_ttl);
  o.loop.max_queued = absl::GetFlag(FLAGS_max_queued);
  o.loop.default_max_tokens = absl::GetFlag(FLAGS_default_max_tokens);
  o.loop.max_tokens_limit = absl::GetFlag(FLAGS_max_max_tokens);
  o.loop.max_prompt_tokens = absl::GetFlag(FLAGS_max_prompt_tokens);
  o.loop.max_top_logprobs = absl::GetFlag(FLAGS_max_logprobs);
  o.loop.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk);
  o.loop.prefill_token_budget = absl::GetFlag(FLAGS_prefill_token_budget);
  o.token_file = absl::GetFlag(FLAGS_token_file);
  o.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  o.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  o.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  o.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  o.keepalive_time = absl::GetFlag(FLAGS_keepalive_time);
  o.keepalive_timeout = absl::GetFlag(FLAGS_keepalive_timeout);
  return o;
}

// The flag checks that need no model; the rest fail in SupraServer::Start.
std::string CheckFlags(const supra::server::ServerOptions& o) {
  if (o.model.dir.empty()) return "--model_dir is required";
  if (o.model.backend != "cpu" && o.model.backend != "cuda") {
    return absl::StrCat("--device must be cpu, cuda or cuda:N, got ", absl::GetFlag(FLAGS_device));
  }
  if (o.model.cpu.num_slots < 1) return "--state_slots must be >= 1";
  if (o.loop.sessions.max_sessions < 1) return "--max_sessions must be >= 1";
  if (o.loop.max_queued < 1) return "--max_queued must be >= 1";
  if (o.loop.max_tokens_limit < 1) return "--max_max_tokens must be >= 1";
  if (o.loop.default_max_tokens < 1 || o.loop.default_max_tokens > o.loop.max_tokens_limit) {
    return "--default_max_tokens must be in [1, --max_max_tokens]";
  }
  if (o.loop.max_prompt_tokens < 1) return "--max_prompt_tokens must be >= 1";
  if (o.loop.prefill_chunk < 1) return "--prefill_chunk must be >= 1";
  if (o.loop.prefill_token_budget < 1) return "--prefill_token_budget must be >= 1";
  if (o.max_message_bytes < 1024) return "--max_message_bytes must be >= 1024";
  if (o.loop.sessions.idle_ttl <= absl::ZeroDuration()) return "--session_idle_ttl must be positive";
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "supra-server: serves a SUPRA model over gRPC (package supra.v1, grpc.health.v1, reflection).\n"
      "  supra-server --model_dir DIR [--device cpu|cuda] [--listen 0.0.0.0:50051] [flags]\n"
      "SIGTERM or SIGINT drains (health NOT_SERVING, new turns refused, in-flight turns finish\n"
      "until --drain_timeout) and exits 0. Exit 1: start-up failed (reason on stderr).");
  // Signals go to one thread that waits for them (sigwait), so block them
  // before any other thread exists.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::ParseCommandLine(argc, argv);
  const supra::server::ServerOptions options = OptionsFromFlags();
  if (const std::string error = CheckFlags(options); !error.empty()) {
    std::fprintf(stderr, "supra-server: %s (see --help)\n", error.c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<supra::server::SupraServer>> server = supra::server::SupraServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "supra-server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  const absl::Duration drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  std::thread signal_thread([&] {
    int received = 0;
    sigwait(&signals, &received);
    supra::server::LogInfo(absl::StrCat("received ", received == SIGTERM ? "SIGTERM" : "SIGINT", ", draining"));
    std::thread second([&] {
      int again = 0;
      sigwait(&signals, &again);
      supra::server::LogError("second signal during the drain: exiting now");
      std::_Exit(2);
    });
    second.detach();
    (*server)->Shutdown(drain_timeout);
  });
  (*server)->Wait();
  signal_thread.join();
  server->reset();
  supra::server::LogInfo("stopped");
  return 0;
}

// supra-generate: loads a model directory and generates from a prompt,
// printing text (or token ids) as tokens are sampled. An engine-level tool:
// no server, one sequence, CPU backend.
//
//   supra-generate --model tests/data/models/mha --prompt "Hello" --max_tokens 32
//   supra-generate --model DIR --prompt_ids 1,415,3 --print_ids --print_logits 5
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/runtime/generate.h"
#include "engine/runtime/model.h"
#include "engine/tokenizer/incremental_decoder.h"
#include "engine/util/absl_compat.h"

ABSL_FLAG(std::string, model, "", "Model directory (config.json, tokenizer.model, weights). Required.");
ABSL_FLAG(std::string, prompt, "", "Prompt text; BOS is prepended.");
ABSL_FLAG(std::string, prompt_ids, "", "Prompt as comma-separated token ids, taken as given (no BOS added).");
ABSL_FLAG(int32_t, max_tokens, 64, "Tokens to generate at most.");
ABSL_FLAG(bool, ignore_eos, false, "Keep generating after the model's end-of-sequence token.");
ABSL_FLAG(float, temperature, 0.0f, "Sampling temperature; 0 is greedy.");
ABSL_FLAG(int32_t, top_k, 0, "Keep the k most likely tokens (0: off).");
ABSL_FLAG(float, top_p, 1.0f, "Nucleus sampling mass in (0, 1].");
ABSL_FLAG(float, min_p, 0.0f, "Drop tokens below min_p times the top probability.");
ABSL_FLAG(float, repetition_penalty, 1.0f, "Repetition penalty (1: off).");
ABSL_FLAG(float, presence_penalty, 0.0f, "Presence penalty in [-2, 2].");
ABSL_FLAG(float, frequency_penalty, 0.0f, "Frequency penalty in [-2, 2].");
ABSL_FLAG(int32_t, penalty_window, 256, "How many recent tokens the penalties look at.");
ABSL_FLAG(uint64_t, seed, 0, "Random seed.");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: all cores).");
ABSL_FLAG(std::string, backend, "cpu", "Compute backend: cpu, or cuda (bf16 weights on the GPU).");
ABSL_FLAG(int32_t, prefill_chunk, 256, "Prompt tokens per prefill chunk.");
ABSL_FLAG(bool, print_ids, false, "Print token ids instead of text.");
ABSL_FLAG(int32_t, print_logits, 0, "Also print the N largest logits before each sampled token (to stderr).");

namespace supra {
namespace {

int Fail(const absl::Status& status) {
  std::cerr << "supra-generate: " << status << "\n";
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 2;
    case absl::StatusCode::kNotFound:
      return 3;
    default:
      return 1;
  }
}

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text, int vocab) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id) || id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("--prompt_ids: '", part, "' is not a token id in [0, ", vocab, ")"));
    }
    ids.push_back(id);
  }
  return ids;
}

void PrintTopLogits(absl::Span<const float> logits, int n, const Tokenizer& tokenizer) {
  std::vector<int32_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  n = std::min<int>(n, static_cast<int>(order.size()));
  std::partial_sort(order.begin(), order.begin() + n, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  std::string line = "logits:";
  for (int i = 0; i < n; ++i) {
    auto piece = tokenizer.IdToPiece(order[i]);
    absl::StrAppend(&line, " ", order[i], "(", piece.ok() ? ToAbsl(*piece) : "?", ")=", logits[order[i]]);
  }
  std::cerr << line << "\n";
}

int Run() {
  if (absl::GetFlag(FLAGS_model).empty()) {
    return Fail(absl::InvalidArgumentError("--model is required (see --help)"));
  }
  if (absl::GetFlag(FLAGS_prompt).empty() == absl::GetFlag(FLAGS_prompt_ids).empty()) {
    return Fail(absl::InvalidArgumentError("give exactly one of --prompt and --prompt_ids"));
  }
  ModelOptions options;
  options.dir = absl::GetFlag(FLAGS_model);
  options.cpu.num_slots = 1;
  options.cpu.num_threads = absl::GetFlag(FLAGS_threads);
  options.backend = absl::GetFlag(FLAGS_backend);
  options.cuda.num_slots = 1;
  options.cuda.max_batch = 1;
  auto model = Model::Load(options);
  if (!model.ok()) return Fail(model.status());
  const Tokenizer& tokenizer = (*model)->tokenizer();

  std::vector<int32_t> prompt;
  if (!absl::GetFlag(FLAGS_prompt_ids).empty()) {
    auto ids = ParseIds(absl::GetFlag(FLAGS_prompt_ids), (*model)->config().vocab_size);
    if (!ids.ok()) return Fail(ids.status());
    prompt = *std::move(ids);
  } else {
    prompt.push_back((*model)->bos_id());
    const std::vector<int32_t> text_ids = tokenizer.Encode(absl::GetFlag(FLAGS_prompt));
    prompt.insert(prompt.end(), text_ids.begin(), text_ids.end());
  }

  GenerateOptions generate;
  SamplingParams& s = generate.sampling;
  s.temperature = absl::GetFlag(FLAGS_temperature);
  s.top_k = absl::GetFlag(FLAGS_top_k);
  s.top_p = absl::GetFlag(FLAGS_top_p);
  s.min_p = absl::GetFlag(FLAGS_min_p);
  s.repetition_penalty = absl::GetFlag(FLAGS_repetition_penalty);
  s.presence_penalty = absl::GetFlag(FLAGS_presence_penalty);
  s.frequency_penalty = absl::GetFlag(FLAGS_frequency_penalty);
  s.penalty_window = absl::GetFlag(FLAGS_penalty_window);
  s.seed = absl::GetFlag(FLAGS_seed);
  generate.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  generate.stop_at_eos = !absl::GetFlag(FLAGS_ignore_eos);
  generate.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk);

  const bool print_ids = absl::GetFlag(FLAGS_print_ids);
  const int print_logits = absl::GetFlag(FLAGS_print_logits);
  auto decoder = IncrementalDecoder::Create(tokenizer, prompt);
  if (!decoder.ok()) return Fail(decoder.status());
  std::vector<int32_t> history;
  const absl::Status status = GenerateOnSlot(
      **model, /*slot=*/0, prompt, /*start_position=*/0, generate, history,
      [&](int32_t token, absl::Span<const float> logits) {
        if (print_logits > 0) PrintTopLogits(logits, print_logits, tokenizer);
        if (print_ids) {
          std::cout << token << "\n";
        } else {
          auto delta = decoder->Step(token);
          if (!delta.ok()) return false;
          std::cout << *delta;
        }
        std::cout.flush();
        return true;
      });
  if (!print_ids) {
    auto tail = decoder->Flush();
    std::cout << tail.value_or("") << "\n";
  }
  if (!status.ok()) return Fail(status);
  return 0;
}

}  // namespace
}  // namespace supra

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Generates text from a SUPRA model directory on the CPU.\n"
      "  supra-generate --model DIR --prompt TEXT [--max_tokens N] [sampling flags]\n"
      "  supra-generate --model DIR --prompt_ids 1,22,333 --print_ids [--print_logits 5]\n"
      "Exit codes: 0 ok, 1 internal error, 2 bad argument, 3 not found.");
  absl::ParseCommandLine(argc, argv);
  return supra::Run();
}

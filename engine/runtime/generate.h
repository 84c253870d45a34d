// A single-sequence generation loop on one state slot: prefill the prompt,
// then decode and sample token by token. The engine-level building block the
// supra-generate command uses; the server's scheduler batches many of these.
#ifndef SUPRA_ENGINE_RUNTIME_GENERATE_H_
#define SUPRA_ENGINE_RUNTIME_GENERATE_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/runtime/model.h"
#include "engine/sampling/sampling_params.h"

namespace supra {

struct GenerateOptions {
  SamplingParams sampling;
  int32_t max_tokens = 128;    // tokens to sample at most
  bool stop_at_eos = true;     // end after sampling the model's EOS
  int32_t prefill_chunk = 256; // tokens per prefill chunk
};

// Called for every sampled token, with the logits it was sampled from
// ([vocab], float32, before any penalty). Returning false stops generation.
using TokenCallback = std::function<bool(int32_t token, absl::Span<const float> logits)>;

// Feeds `prompt` into `slot` (whose state must hold the tokens before
// `start_position`, i.e. be reset for a new sequence) and samples up to
// max_tokens tokens. `history` is the sequence so far (for the penalty
// window); the sampled tokens are appended to it. The last sampled token is
// not fed to the model (supra-model.md §5).
absl::Status GenerateOnSlot(Model& model, int32_t slot, absl::Span<const int32_t> prompt, int64_t start_position,
                            const GenerateOptions& options, std::vector<int32_t>& history,
                            const TokenCallback& on_token);

}  // namespace supra

#endif  // SUPRA_ENGINE_RUNTIME_GENERATE_H_

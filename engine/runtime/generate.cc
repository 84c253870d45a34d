#include "engine/runtime/generate.h"

#include "absl/strings/str_cat.h"
#include "engine/sampling/sampler.h"
#include "engine/util/status_macros.h"

namespace supra {

absl::Status GenerateOnSlot(Model& model, int32_t slot, absl::Span<const int32_t> prompt, int64_t start_position,
                            const GenerateOptions& options, std::vector<int32_t>& history,
                            const TokenCallback& on_token) {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt is empty");
  if (options.max_tokens < 0) return absl::InvalidArgumentError("max_tokens must be >= 0");
  RETURN_IF_ERROR(ValidateSamplingParams(options.sampling));
  Backend& backend = model.backend();
  const int vocab = model.config().vocab_size;
  std::vector<float> logits(vocab);  // [vocab], fp32
  Sampler sampler;

  PrefillSequence seq{slot, prompt, start_position};
  RETURN_IF_ERROR(backend.Prefill(absl::MakeConstSpan(&seq, 1), options.prefill_chunk, LogitsOutput::kLastOnly,
                                  absl::MakeSpan(logits)));
  history.insert(history.end(), prompt.begin(), prompt.end());
  int64_t position = start_position + static_cast<int64_t>(prompt.size());

  for (int32_t i = 0; i < options.max_tokens; ++i) {
    ASSIGN_OR_RETURN(const int32_t token, sampler.Sample(logits, options.sampling, history, i));
    history.push_back(token);
    if (!on_token(token, logits)) break;
    if (options.stop_at_eos && token == model.eos_id()) break;
    if (i + 1 == options.max_tokens) break;  // the last sampled token stays pending
    const DecodeBatch batch{absl::MakeConstSpan(&slot, 1), absl::MakeConstSpan(&token, 1),
                            absl::MakeConstSpan(&position, 1)};
    RETURN_IF_ERROR(backend.Decode(batch, absl::MakeSpan(logits)));
    ++position;
  }
  return absl::OkStatus();
}

}  // namespace supra

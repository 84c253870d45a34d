// The interface every compute backend (CPU reference, CUDA) implements.
//
// A backend owns the model weights in its own dtype and a pool of recurrent
// states, one slot per resident sequence:
//   state pool: [slots, layers, H, F, Dv], float32
// A slot's state is the session state P of supra-model.md §5 (already
// decayed). Positions are absolute token positions in the sequence; the
// backend never tracks them itself, so callers (the scheduler) own them.
#ifndef SUPRA_ENGINE_BACKEND_H_
#define SUPRA_ENGINE_BACKEND_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/model/config.h"
#include "engine/sampling/sampling_params.h"

namespace supra {

// Largest valid absolute position (supra-model.md §3.6); beyond it OUT_OF_RANGE.
inline constexpr int64_t kMaxPosition = 2147483647;  // 2^31 - 1

// One decode step: sequence i feeds tokens[i] at positions[i] into slots[i].
// Slots in one batch are distinct.
struct DecodeBatch {
  absl::Span<const int32_t> slots;      // [n]
  absl::Span<const int32_t> tokens;     // [n]
  absl::Span<const int64_t> positions;  // [n]
};

// One sequence of a prefill call: tokens fed from start_position on.
struct PrefillSequence {
  int32_t slot = 0;
  absl::Span<const int32_t> tokens;  // [len], len >= 1
  int64_t start_position = 0;
};

// How to sample one sequence's next token inside a decode step.
struct SampleSpec {
  SamplingParams params;
  int64_t token_index = 0;            // draw counter: the index of this token within its request
  absl::Span<const int32_t> history;  // recent tokens, most recent last (the penalty window, or more)
};

enum class LogitsOutput {
  kLastOnly,  // logits: [num_sequences, vocab], the last position of each
  kAll,       // logits: [sum of lengths, vocab], every position in order
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;
  virtual const ModelConfig& config() const = 0;
  virtual int num_slots() const = 0;

  // Sets a slot's state to zero (an empty sequence).
  virtual absl::Status ResetSlot(int32_t slot) = 0;
  // dst's state becomes a copy of src's.
  virtual absl::Status CopySlot(int32_t src, int32_t dst) = 0;
  // state: [layers, H, F, Dv], float32 (config().state_numel() values).
  virtual absl::Status ReadState(int32_t slot, absl::Span<float> state) = 0;
  virtual absl::Status WriteState(int32_t slot, absl::Span<const float> state) = 0;

  // One recurrent step for each sequence of the batch. logits: [n, vocab].
  virtual absl::Status Decode(const DecodeBatch& batch, absl::Span<float> logits) = 0;

  // Decode followed by sampling, without handing the logits to the caller:
  // tokens[i] is sampled from sequence i's logits with specs[i] (a backend may
  // sample on its device); chosen_logprobs, when not empty, receives the raw
  // log-softmax of each chosen token. tokens, chosen_logprobs: [n].
  virtual absl::Status DecodeAndSample(const DecodeBatch& batch, absl::Span<const SampleSpec> specs,
                                       absl::Span<int32_t> tokens, absl::Span<float> chosen_logprobs) = 0;

  // Feeds each sequence's tokens in chunks of at most `chunk_size` tokens
  // (supra-model.md §4); the result equals feeding them one by one. Sequences
  // may have different lengths and use distinct slots.
  virtual absl::Status Prefill(absl::Span<const PrefillSequence> sequences, int chunk_size, LogitsOutput output,
                               absl::Span<float> logits) = 0;
};

}  // namespace supra

#endif  // SUPRA_ENGINE_BACKEND_H_

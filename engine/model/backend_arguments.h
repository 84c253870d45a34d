// The argument checks every Backend runs before touching its state, so that a
// bad call fails alone, with the same message on every backend, and leaves
// every slot as it was.
#ifndef SUPRA_ENGINE_MODEL_BACKEND_ARGUMENTS_H_
#define SUPRA_ENGINE_MODEL_BACKEND_ARGUMENTS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/backend.h"
#include "engine/model/config.h"

namespace supra {

class BackendArguments {
 public:
  BackendArguments(const ModelConfig& config, int num_slots);

  // INVALID_ARGUMENT unless 0 <= slot < num_slots; `what` names the slot.
  absl::Status CheckSlot(int32_t slot, std::string_view what) const;
  // INVALID_ARGUMENT unless `size` is layers·H·F·Dv.
  absl::Status CheckStateSize(size_t size) const;
  // INVALID_ARGUMENT for a token id outside [0, vocab).
  absl::Status CheckTokens(absl::Span<const int32_t> tokens, size_t sequence) const;
  // Positions start .. start + length − 1 must lie in [0, kMaxPosition]:
  // INVALID_ARGUMENT when negative, OUT_OF_RANGE beyond.
  static absl::Status CheckPositions(int64_t start, int64_t length, size_t sequence);

  // Everything about a decode batch: span sizes, slots valid and distinct,
  // tokens, positions, and `logits` of n × vocab floats (unless null).
  absl::Status CheckDecode(const DecodeBatch& batch, const absl::Span<float>* logits);
  // Everything about a prefill call; returns the logits rows it needs.
  absl::Status CheckPrefill(absl::Span<const PrefillSequence> sequences, int chunk_size, LogitsOutput output,
                            size_t logits_size);

 private:
  absl::Status CheckDistinctSlots(size_t n, const int32_t* slots, size_t stride_bytes);

  int vocab_;
  int num_slots_;
  int64_t state_numel_;
  std::vector<uint8_t> slot_used_;  // [slots], scratch
};

}  // namespace supra

#endif  // SUPRA_ENGINE_MODEL_BACKEND_ARGUMENTS_H_

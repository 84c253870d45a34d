#include "engine/model/backend_arguments.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/util/absl_compat.h"
#include "engine/util/status_macros.h"

namespace supra {

BackendArguments::BackendArguments(const ModelConfig& config, int num_slots)
    : vocab_(config.vocab_size), num_slots_(num_slots), state_numel_(config.state_numel()), slot_used_(num_slots) {}

absl::Status BackendArguments::CheckSlot(int32_t slot, std::string_view what) const {
  if (slot < 0 || slot >= num_slots_) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " ", slot, " is outside [0, ", num_slots_, ")"));
  }
  return absl::OkStatus();
}

absl::Status BackendArguments::CheckStateSize(size_t size) const {
  if (static_cast<int64_t>(size) != state_numel_) {
    return absl::InvalidArgumentError(
        absl::StrCat("state holds ", size, " floats, expected layers·H·F·Dv = ", state_numel_));
  }
  return absl::OkStatus();
}

absl::Status BackendArguments::CheckTokens(absl::Span<const int32_t> tokens, size_t sequence) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab_) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", tokens[i], " (sequence ", sequence, ", index ", i,
                                                     ") is outside the vocabulary [0, ", vocab_, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status BackendArguments::CheckPositions(int64_t start, int64_t length, size_t sequence) {
  if (start < 0) {
    return absl::InvalidArgumentError(absl::StrCat("negative position ", start, " (sequence ", sequence, ")"));
  }
  if (start > kMaxPosition - (length - 1)) {
    return absl::OutOfRangeError(absl::StrCat("sequence ", sequence, ": ", length, " tokens from position ", start,
                                              " go beyond the largest position ", kMaxPosition));
  }
  return absl::OkStatus();
}

absl::Status BackendArguments::CheckDistinctSlots(size_t n, const int32_t* slots, size_t stride_bytes) {
  std::fill(slot_used_.begin(), slot_used_.end(), 0);
  const auto* at = reinterpret_cast<const uint8_t*>(slots);
  for (size_t i = 0; i < n; ++i) {
    const int32_t slot = *reinterpret_cast<const int32_t*>(at + i * stride_bytes);
    RETURN_IF_ERROR(CheckSlot(slot, absl::StrCat("slot of sequence ", i)));
    if (slot_used_[slot]++ != 0) {
      return absl::InvalidArgumentError(absl::StrCat("slot ", slot, " appears twice in one batch"));
    }
  }
  return absl::OkStatus();
}

absl::Status BackendArguments::CheckDecode(const DecodeBatch& batch, const absl::Span<float>* logits) {
  const size_t n = batch.slots.size();
  if (batch.tokens.size() != n || batch.positions.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("decode batch has ", n, " slots, ", batch.tokens.size(),
                                                   " tokens and ", batch.positions.size(), " positions"));
  }
  if (logits != nullptr && logits->size() != n * static_cast<size_t>(vocab_)) {
    return absl::InvalidArgumentError(
        absl::StrCat("logits hold ", logits->size(), " floats, expected ", n, " × ", vocab_));
  }
  RETURN_IF_ERROR(CheckDistinctSlots(n, batch.slots.data(), sizeof(int32_t)));
  for (size_t i = 0; i < n; ++i) {
    RETURN_IF_ERROR(CheckTokens(batch.tokens.subspan(i, 1), i));
    RETURN_IF_ERROR(CheckPositions(batch.positions[i], 1, i));
  }
  return absl::OkStatus();
}

absl::Status BackendArguments::CheckPrefill(absl::Span<const PrefillSequence> sequences, int chunk_size,
                                            LogitsOutput output, size_t logits_size) {
  if (chunk_size < 1) return absl::InvalidArgumentError(absl::StrCat("chunk_size ", chunk_size, " is not positive"));
  const size_t n = sequences.size();
  if (n > 0) RETURN_IF_ERROR(CheckDistinctSlots(n, &sequences[0].slot, sizeof(PrefillSequence)));
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    const PrefillSequence& s = sequences[i];
    const int64_t len = static_cast<int64_t>(s.tokens.size());
    if (len == 0) return absl::InvalidArgumentError(absl::StrCat("sequence ", i, " has no tokens"));
    RETURN_IF_ERROR(CheckTokens(s.tokens, i));
    RETURN_IF_ERROR(CheckPositions(s.start_position, len, i));
    total += len;
  }
  const int64_t rows = output == LogitsOutput::kAll ? total : static_cast<int64_t>(n);
  if (static_cast<int64_t>(logits_size) != rows * vocab_) {
    return absl::InvalidArgumentError(
        absl::StrCat("logits hold ", logits_size, " floats, expected ", rows, " × ", vocab_));
  }
  return absl::OkStatus();
}

}  // namespace supra

// The CPU backend: the state pool, argument checks, and the split of a
// prefill into rounds of chunks (every sequence's next chunk, batched
// together so that the projections read the weights once per round).
//
// Not thread-safe: the scheduler drives a backend from one thread, and the
// activation scratch is reused from call to call. Every argument is checked
// before any state changes, so a refused call leaves the pool as it was.
#include "engine/cpu/cpu_backend.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/cpu/cpu_model.h"
#include "engine/cpu/cpu_weights.h"
#include "engine/model/backend_arguments.h"
#include "engine/sampling/logprobs.h"
#include "engine/sampling/sampler.h"
#include "engine/util/absl_compat.h"
#include "engine/util/status_macros.h"
#include "engine/util/thread_pool.h"

namespace supra {
namespace {

using cpu::ConstMatrix;
using cpu::Matrix;

// The longest chunk run at once; a larger chunk_size is cut to it ("at most
// chunk_size tokens"). Bounds the [C, C] score blocks and the activations.
constexpr int64_t kMaxChunkTokens = 2048;
// Rows per forward pass in a prefill round: beyond this a round's chunks go
// through the blocks in several groups (sequences are independent).
constexpr int64_t kMaxRowsPerPass = 4096;

absl::Status CheckConfig(const ModelConfig& c) {
  if (c.dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_heads_kv <= 0 || c.qk_head_dim <= 0 || c.v_head_dim <= 0 ||
      c.intermediate_dim_ffn <= 0 || c.vocab_size <= 0) {
    return absl::InvalidArgumentError("model config has a non-positive size");
  }
  if (c.n_heads % c.n_heads_kv != 0 || c.dim % c.n_heads != 0 || c.qk_head_dim != c.head_dim() ||
      c.head_dim() % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("model config is inconsistent: dim ", c.dim, ", n_heads ", c.n_heads,
                                                   ", n_heads_kv ", c.n_heads_kv, ", qk_head_dim ", c.qk_head_dim));
  }
  return absl::OkStatus();
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(const ModelConfig& config, cpu::CpuWeights weights, int num_slots, int num_threads)
      : config_(config),
        pool_(num_threads),
        model_(config, std::move(weights), &pool_),
        num_slots_(num_slots),
        slot_numel_(config.state_numel()),
        states_(static_cast<size_t>(num_slots) * slot_numel_, 0.0f),
        args_(config, num_slots) {}

  std::string_view name() const override { return "cpu"; }
  const ModelConfig& config() const override { return config_; }
  int num_slots() const override { return num_slots_; }

  absl::Status ResetSlot(int32_t slot) override {
    RETURN_IF_ERROR(args_.CheckSlot(slot, "slot"));
    std::fill_n(SlotState(slot), slot_numel_, 0.0f);
    return absl::OkStatus();
  }

  absl::Status CopySlot(int32_t src, int32_t dst) override {
    RETURN_IF_ERROR(args_.CheckSlot(src, "source slot"));
    RETURN_IF_ERROR(args_.CheckSlot(dst, "destination slot"));
    if (src != dst) std::memcpy(SlotState(dst), SlotState(src), sizeof(float) * slot_numel_);
    return absl::OkStatus();
  }

  absl::Status ReadState(int32_t slot, absl::Span<float> state) override {
    RETURN_IF_ERROR(args_.CheckSlot(slot, "slot"));
    RETURN_IF_ERROR(args_.CheckStateSize(state.size()));
    std::memcpy(state.data(), SlotState(slot), sizeof(float) * slot_numel_);
    return absl::OkStatus();
  }

  absl::Status WriteState(int32_t slot, absl::Span<const float> state) override {
    RETURN_IF_ERROR(args_.CheckSlot(slot, "slot"));
    RETURN_IF_ERROR(args_.CheckStateSize(state.size()));
    std::memcpy(SlotState(slot), state.data(), sizeof(float) * slot_numel_);
    return absl::OkStatus();
  }

  absl::Status Decode(const DecodeBatch& batch, absl::Span<float> logits) override;
  absl::Status DecodeAndSample(const DecodeBatch& batch, absl::Span<const SampleSpec> specs,
                               absl::Span<int32_t> tokens, absl::Span<float> chosen_logprobs) override;
  absl::Status Prefill(absl::Span<const PrefillSequence> sequences, int chunk_size, LogitsOutput output,
                       absl::Span<float> logits) override;

 private:
  float* SlotState(int32_t slot) { return states_.data() + slot * slot_numel_; }

  ModelConfig config_;
  ThreadPool pool_;
  cpu::CpuModel model_;
  int num_slots_;
  int64_t slot_numel_;              // layers·H·F·Dv
  std::vector<float> states_;       // [slots, layers, H, F, Dv]
  BackendArguments args_;

  // Per-call scratch, reused.
  std::vector<float*> row_states_;        // [n]
  std::vector<int32_t> round_tokens_;     // [rows of a pass]
  std::vector<int64_t> round_positions_;  // [rows of a pass]
  std::vector<cpu::SequenceChunk> round_chunks_;
  std::vector<size_t> round_sequences_;  // sequence index of each chunk
  std::vector<float> last_hidden_;       // [sequences, D], kLastOnly
  std::vector<int64_t> first_row_;       // [sequences], kAll: first logits row
  std::vector<float> sample_logits_;     // [n, V], DecodeAndSample
  Sampler sampler_;
  LogprobsCalculator logprobs_;
};

absl::Status CpuBackend::DecodeAndSample(const DecodeBatch& batch, absl::Span<const SampleSpec> specs,
                                         absl::Span<int32_t> tokens, absl::Span<float> chosen_logprobs) {
  const size_t n = batch.slots.size();
  if (specs.size() != n || tokens.size() != n || (!chosen_logprobs.empty() && chosen_logprobs.size() != n)) {
    return absl::InvalidArgumentError(absl::StrCat("DecodeAndSample: ", n, " sequences but ", specs.size(),
                                                   " sampling specs, ", tokens.size(), " token outputs and ",
                                                   chosen_logprobs.size(), " logprob outputs"));
  }
  for (const SampleSpec& spec : specs) RETURN_IF_ERROR(ValidateSamplingParams(spec.params));
  const size_t vocab = static_cast<size_t>(config_.vocab_size);
  sample_logits_.resize(n * vocab);
  RETURN_IF_ERROR(Decode(batch, absl::MakeSpan(sample_logits_)));
  for (size_t i = 0; i < n; ++i) {
    const absl::Span<const float> row = absl::MakeConstSpan(sample_logits_).subspan(i * vocab, vocab);
    ASSIGN_OR_RETURN(tokens[i], sampler_.Sample(row, specs[i].params, specs[i].history, specs[i].token_index));
    if (!chosen_logprobs.empty()) {
      ASSIGN_OR_RETURN(const Logprobs lp, logprobs_.Compute(row, tokens[i], /*top_n=*/0));
      chosen_logprobs[i] = lp.chosen;
    }
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::Decode(const DecodeBatch& batch, absl::Span<float> logits) {
  RETURN_IF_ERROR(args_.CheckDecode(batch, &logits));
  const size_t n = batch.slots.size();
  const int64_t vocab = config_.vocab_size;
  if (n == 0) return absl::OkStatus();

  row_states_.resize(n);
  for (size_t i = 0; i < n; ++i) row_states_[i] = SlotState(batch.slots[i]);
  RETURN_IF_ERROR(model_.Forward(batch.tokens, batch.positions, row_states_, {}));
  model_.Logits(model_.hidden(), Matrix{logits.data(), static_cast<int64_t>(n), vocab, vocab});
  return absl::OkStatus();
}

absl::Status CpuBackend::Prefill(absl::Span<const PrefillSequence> sequences, int chunk_size, LogitsOutput output,
                                 absl::Span<float> logits) {
  RETURN_IF_ERROR(args_.CheckPrefill(sequences, chunk_size, output, logits.size()));
  const int64_t vocab = config_.vocab_size, dim = config_.dim;
  const size_t n = sequences.size();
  int64_t longest = 0;
  for (const PrefillSequence& s : sequences) longest = std::max(longest, static_cast<int64_t>(s.tokens.size()));
  if (n == 0) return absl::OkStatus();

  // Row of `logits` where each sequence's first token goes (kAll).
  std::vector<int64_t>& first_row = first_row_;
  first_row.assign(n, 0);
  for (size_t i = 1; i < n; ++i) first_row[i] = first_row[i - 1] + static_cast<int64_t>(sequences[i - 1].tokens.size());
  if (output == LogitsOutput::kLastOnly) last_hidden_.resize(n * dim);

  const int64_t chunk = std::min<int64_t>(chunk_size, kMaxChunkTokens);
  for (int64_t offset = 0; offset < longest; offset += chunk) {
    // This round: chunk [offset, offset + chunk) of every sequence that long,
    // run through the blocks in passes of at most kMaxRowsPerPass rows.
    size_t next = 0;
    while (next < n) {
      round_tokens_.clear();
      round_positions_.clear();
      round_chunks_.clear();
      round_sequences_.clear();
      for (; next < n; ++next) {
        const PrefillSequence& s = sequences[next];
        const int64_t len = std::min<int64_t>(chunk, static_cast<int64_t>(s.tokens.size()) - offset);
        if (len <= 0) continue;
        const int64_t rows = static_cast<int64_t>(round_tokens_.size());
        if (rows > 0 && rows + len > std::max(kMaxRowsPerPass, chunk)) break;
        round_chunks_.push_back(cpu::SequenceChunk{rows, len, SlotState(s.slot)});
        round_sequences_.push_back(next);
        for (int64_t t = 0; t < len; ++t) {
          round_tokens_.push_back(s.tokens[offset + t]);
          round_positions_.push_back(s.start_position + offset + t);
        }
      }
      if (round_chunks_.empty()) break;
      RETURN_IF_ERROR(model_.Forward(round_tokens_, round_positions_, {}, round_chunks_));
      const ConstMatrix hidden = model_.hidden();
      for (size_t c = 0; c < round_chunks_.size(); ++c) {
        const cpu::SequenceChunk& ch = round_chunks_[c];
        const size_t seq = round_sequences_[c];
        if (output == LogitsOutput::kAll) {
          model_.Logits(ConstMatrix{hidden.row(ch.row_begin), ch.length, dim, hidden.stride},
                        Matrix{logits.data() + (first_row[seq] + offset) * vocab, ch.length, vocab, vocab});
        } else if (offset + ch.length == static_cast<int64_t>(sequences[seq].tokens.size())) {
          std::memcpy(last_hidden_.data() + seq * dim, hidden.row(ch.row_begin + ch.length - 1), sizeof(float) * dim);
        }
      }
    }
  }
  if (output == LogitsOutput::kLastOnly) {
    model_.Logits(ConstMatrix{last_hidden_.data(), static_cast<int64_t>(n), dim, dim},
                  Matrix{logits.data(), static_cast<int64_t>(n), vocab, vocab});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(const ModelConfig& config, const Checkpoint& checkpoint,
                                                          const CpuBackendOptions& options) {
  RETURN_IF_ERROR(CheckConfig(config));
  if (options.num_slots < 1) {
    return absl::InvalidArgumentError(absl::StrCat("num_slots ", options.num_slots, " must be at least 1"));
  }
  ASSIGN_OR_RETURN(cpu::CpuWeights weights, cpu::LoadCpuWeights(config, checkpoint));
  return std::unique_ptr<Backend>(
      std::make_unique<CpuBackend>(config, std::move(weights), options.num_slots, options.num_threads));
}

}  // namespace supra

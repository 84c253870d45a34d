// The SUPRA network on the CPU: embedding, blocks and head over a batch of
// rows (tokens), with the attention of each row either recurrent (decode) or
// chunked (prefill). Owns the weights and the activation scratch, which is
// reused from call to call; not thread-safe (one caller at a time).
#ifndef SUPRA_ENGINE_CPU_CPU_MODEL_H_
#define SUPRA_ENGINE_CPU_CPU_MODEL_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/cpu/cpu_weights.h"
#include "engine/cpu/ops.h"
#include "engine/model/config.h"
#include "engine/util/thread_pool.h"

namespace supra::cpu {

// Rows [row_begin, row_begin + length) continue the sequence whose whole
// state (all layers) is at `state`.
struct SequenceChunk {
  int64_t row_begin = 0;
  int64_t length = 0;
  float* state = nullptr;  // [layers, H, F, Dv]
};

class CpuModel {
 public:
  CpuModel(const ModelConfig& config, CpuWeights weights, ThreadPool* pool);

  const ModelConfig& config() const { return config_; }
  int64_t layer_state_numel() const { return layer_state_numel_; }  // H·F·Dv

  // Runs every block over the rows; the result is hidden(). Positions must be
  // valid (RopeAngles checks them again). Exactly one of:
  //   row_states: [m], row i is one token of the sequence at row_states[i]
  //               ([layers, H, F, Dv]), fed through the recurrent form;
  //   chunks:     disjoint runs of rows covering [0, m), chunked form.
  absl::Status Forward(absl::Span<const int32_t> tokens,     // [m]
                       absl::Span<const int64_t> positions,  // [m]
                       absl::Span<float* const> row_states, absl::Span<const SequenceChunk> chunks);

  // The residual stream after the last block (valid until the next Forward).
  ConstMatrix hidden() const;  // [m, D]

  // logits = head(x): final RMSNorm and output projection.
  void Logits(ConstMatrix x,   // [k, D]
              Matrix logits);  // [k, V]

 private:
  void Reserve(int64_t rows);
  void Attention(int layer, absl::Span<float* const> row_states, absl::Span<const SequenceChunk> chunks, ConstMatrix q,
                 ConstMatrix k, ConstMatrix v, Matrix out);

  ModelConfig config_;
  CpuWeights weights_;
  ThreadPool* pool_;
  std::vector<double> inv_freq_;  // [F/2]
  std::vector<float> gammas_;     // [H], float32 as supra-model.md §3.8 stores them
  AttentionShape shape_;
  int64_t layer_state_numel_ = 0;
  int64_t qkv_width_ = 0;  // H·Dh + Hkv·Dh + Hkv·Dv

  // Scratch, grown to the largest batch seen; rows = m of the last Forward.
  int64_t rows_ = 0;
  int64_t capacity_ = 0;
  std::vector<float> x_;                      // [m, D], residual stream
  std::vector<float> normed_;                 // [m, D]
  std::vector<float> qkv_;                    // [m, qkv_width]
  std::vector<float> fq_;                     // [m, H·F], query features
  std::vector<float> fk_;                     // [m, Hkv·F], key features
  std::vector<float> fk_expanded_;            // [m, H·F], keys after qk norm
  std::vector<float> attn_;                   // [m, H·Dv]
  std::vector<float> ab_;                     // [m, 2·FFN]
  std::vector<float> hidden_ffn_;             // [m, FFN]
  std::vector<float> cos_;                    // [m, F/2]
  std::vector<float> sin_;                    // [m, F/2]
  std::vector<float> head_normed_;            // [k, D], Logits' scratch
  std::vector<float*> layer_row_states_;      // [m]
  std::vector<AttentionChunk> layer_chunks_;  // [chunks]
};

}  // namespace supra::cpu

#endif  // SUPRA_ENGINE_CPU_CPU_MODEL_H_

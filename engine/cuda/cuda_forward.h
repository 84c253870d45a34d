// The CUDA forward pass: activation buffers, the state pool and the sequence
// of kernel launches and GEMMs of one decode step or one prefill pass
// (layouts in engine/cuda/cuda_backend.h). Everything runs on one stream and
// nothing here synchronises, so a decode step can be captured in a CUDA graph.
#ifndef SUPRA_ENGINE_CUDA_CUDA_FORWARD_H_
#define SUPRA_ENGINE_CUDA_CUDA_FORWARD_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/backend.h"
#include "engine/cuda/attention_common.h"
#include "engine/cuda/chunked_attention.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_weights.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/gemm.h"

namespace supra::cuda {

// One sequence's share of a prefill pass.
struct PassSequence {
  int32_t slot = 0;
  absl::Span<const int32_t> tokens;  // [len]
  int64_t start_position = 0;
  int64_t row_begin = 0;  // first row of the pass
};

class CudaForward {
 public:
  static absl::StatusOr<std::unique_ptr<CudaForward>> Create(const ModelConfig& config, const CudaWeights* weights,
                                                             const CudaBackendOptions& options, cudaStream_t stream);
  ~CudaForward();

  // Rows one prefill pass takes at most.
  int64_t max_rows() const { return max_rows_; }

  // Copies the batch's slots, tokens and positions to the device input
  // buffers (pinned staging, asynchronous). The batch is already checked.
  absl::Status StageDecodeInputs(const DecodeBatch& batch);
  // The decode step for the n staged sequences: logits() then holds [n, V].
  // Capturable: no host synchronisation, no allocation.
  absl::Status DecodeForward(int64_t n);

  // A prefill pass over `pass` (rows contiguous, at most max_rows()):
  // attention in chunks of at most `chunk` tokens per sequence. With
  // all_logits, logits() holds every row's logits [rows, V]; otherwise
  // last_logits(p) holds pass entry p's last row's logits [V].
  absl::Status Prefill(absl::Span<const PassSequence> pass, int64_t chunk, bool all_logits);

  const float* logits() const { return logits_.data(); }  // [rows, V], fp32
  const float* last_logits(size_t p) const { return logits_.data() + p * config_.vocab_size; }

  // State-pool slot operations (asynchronous on the stream; host pointers are
  // [layers, H, F, Dv] fp32 and must stay valid until the stream syncs).
  absl::Status ZeroSlot(int32_t slot);
  absl::Status CopySlot(int32_t src, int32_t dst);
  absl::Status ReadSlot(int32_t slot, float* host);
  absl::Status WriteSlot(int32_t slot, const float* host);

 private:
  CudaForward(const ModelConfig& config, const CudaWeights* weights, const CudaBackendOptions& options,
              cudaStream_t stream);
  absl::Status Allocate();

  // Embedding (and post-embedding norm) of `rows` staged tokens into x_.
  absl::Status Embed(int64_t rows);
  // Everything of layer `l` before the attention: h, qkv, fq, fk.
  absl::Status AttentionInputs(int l, int64_t rows);
  // Everything of layer `l` after the attention (o_ is ready): out_proj, FFN.
  absl::Status AttentionOutputAndFfn(int l, int64_t rows);
  // The decode attention of layer `l` (state pool updated, o_ written).
  absl::Status RecurrentAttention(int l, int64_t n);
  // One chunk round of the prefill attention of layer `l`: `chunks` on the
  // device, `host_chunks` the same descriptors on the host.
  absl::Status ChunkedAttention(int l, const AttentionChunkDesc* chunks, const AttentionChunkDesc* host_chunks,
                                int num_chunks, int64_t rows);
  AttentionDims attention_dims() const;
  // Final norm of `rows` rows of `x` (row stride D) and the logits into logits_.
  absl::Status Logits(const float* x, int64_t rows);

  size_t state_elem_bytes() const { return options_.state_dtype == StateDType::kF32 ? 4 : 2; }
  uint8_t* slot_state(int32_t slot) const {
    return state_pool_.data() + static_cast<size_t>(slot) * static_cast<size_t>(config_.state_numel()) *
                                    state_elem_bytes();
  }

  ModelConfig config_;
  const CudaWeights* weights_;
  CudaBackendOptions options_;
  cudaStream_t stream_;
  GemmRunner gemm_;
  int64_t max_rows_ = 0;  // max(max_batch, max_prefill_tokens)
  int64_t qkv_width_ = 0;  // H·Dh + Hkv·Dh + Hkv·Dv
  int64_t key_heads_ = 0;  // Hk: H with qk norm, else Hkv

  DeviceBuffer<uint8_t> state_pool_;  // [slots, layers, H, F, Dv], fp32 or bf16
  DeviceBuffer<double> inv_freq_;     // [F/2], float64
  DeviceBuffer<float> gammas_;        // [H]
  // Inputs of a step or pass.
  DeviceBuffer<int32_t> tokens_;      // [max_rows]
  DeviceBuffer<int64_t> positions_;   // [max_rows]
  DeviceBuffer<int32_t> slots_;       // [max_rows]: decode: slot per row
  void* pinned_ = nullptr;            // host staging of tokens/positions/slots
  // Activations.
  DeviceBuffer<float> x_;             // [max_rows, D], fp32
  DeviceBuffer<__nv_bfloat16> h_;     // [max_rows, D], bf16: normalised rows, the projections' input
  DeviceBuffer<__nv_bfloat16> qkv_;   // [max_rows, qkv_width], bf16
  DeviceBuffer<float> fq_;            // [max_rows, H·F], fp32
  DeviceBuffer<float> fk_;            // [max_rows, Hk·F], fp32 (also the projection before the map)
  DeviceBuffer<float> fk_pre_;        // [max_rows, Hkv·F], fp32
  DeviceBuffer<__nv_bfloat16> o_;     // [max_rows, H·Dv], bf16
  DeviceBuffer<__nv_bfloat16> ab_;    // [max_rows, 2·FFN], bf16, interleaved (w12_layout.h); GEMM path only
  DeviceBuffer<__nv_bfloat16> s_;     // [max_rows, FFN], bf16: silu(a) ⊙ b, the input of w3
  DeviceBuffer<float> last_x_;        // [max_rows, D], fp32: last rows gathered for the logits
  DeviceBuffer<float> logits_;        // [max_rows, V], fp32
  DeviceBuffer<uint8_t> chunks_;      // [max_rows] AttentionChunkDesc of a prefill pass
  // The two-pass prefill attention's scratch: the state entering every
  // sub-chunk of a chunk round, [ceil(max_rows / 64) + 32, H, F, Dv] fp32
  // (Mistral-SUPRA at 4096 rows: 192 MiB).
  ChunkedAttentionWorkspace attention_workspace_;
  std::vector<AttentionChunkDesc> descriptors_;  // host scratch of Prefill
  std::vector<int64_t> round_chunks_;            // chunks per round, host scratch
};

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_CUDA_FORWARD_H_

#include "engine/cuda/cuda_forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/cpu/ops.h"
#include "engine/cuda/chunked_attention.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/embedding.h"
#include "engine/cuda/feature_map_rope.h"
#include "engine/cuda/recurrent_attention.h"
#include "engine/cuda/rms_norm.h"
#include "engine/model/decay.h"
#include "engine/util/dtype.h"
#include "engine/util/status_macros.h"

namespace supra::cuda {
namespace {

// Partial sub-chunks the prefill attention's workspace has room for beyond
// max_rows / 64 (one per chunk of a round whose length is not a multiple of 64).
constexpr int kWorkspacePartials = 32;

template <typename T>
absl::Status AllocateInto(DeviceBuffer<T>* buffer, int64_t count, const char* what) {
  auto allocated = DeviceBuffer<T>::Allocate(static_cast<size_t>(std::max<int64_t>(count, 1)), what);
  if (!allocated.ok()) return allocated.status();
  *buffer = *std::move(allocated);
  return absl::OkStatus();
}

}  // namespace

CudaForward::CudaForward(const ModelConfig& config, const CudaWeights* weights, const CudaBackendOptions& options,
                         cudaStream_t stream)
    : config_(config), weights_(weights), options_(options), stream_(stream) {}

CudaForward::~CudaForward() {
  if (pinned_ != nullptr) cudaFreeHost(pinned_);
}

absl::StatusOr<std::unique_ptr<CudaForward>> CudaForward::Create(const ModelConfig& config,
                                                                 const CudaWeights* weights,
                                                                 const CudaBackendOptions& options,
                                                                 cudaStream_t stream) {
  std::unique_ptr<CudaForward> forward(new CudaForward(config, weights, options, stream));
  ASSIGN_OR_RETURN(forward->gemm_, GemmRunner::Create(stream));
  RETURN_IF_ERROR(forward->Allocate());
  return forward;
}

absl::Status CudaForward::Allocate() {
  const ModelConfig& c = config_;
  max_rows_ = std::max(options_.max_batch, options_.max_prefill_tokens);
  qkv_width_ = c.q_width() + c.k_width() + c.v_width();
  key_heads_ = c.apply_qk_norm ? c.n_heads : c.n_heads_kv;
  const int64_t hf = int64_t{c.n_heads} * c.qk_head_dim;
  const int64_t r = max_rows_;

  const int64_t pool_bytes = int64_t{options_.num_slots} * c.state_numel() * static_cast<int64_t>(state_elem_bytes());
  RETURN_IF_ERROR(AllocateInto(&state_pool_, pool_bytes, "the session state pool"));
  CUDA_RETURN_IF_ERROR(cudaMemsetAsync(state_pool_.data(), 0, state_pool_.bytes(), stream_));

  const std::vector<double> inv_freq = cpu::RopeInverseFrequencies(c);
  RETURN_IF_ERROR(AllocateInto(&inv_freq_, static_cast<int64_t>(inv_freq.size()), "RoPE frequencies"));
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(inv_freq_.data(), inv_freq.data(), inv_freq.size() * sizeof(double),
                                       cudaMemcpyHostToDevice, stream_));
  const std::vector<double> gammas64 = DecayGammas(c);
  const std::vector<float> gammas(gammas64.begin(), gammas64.end());
  RETURN_IF_ERROR(AllocateInto(&gammas_, c.n_heads, "decay factors"));
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(gammas_.data(), gammas.data(), gammas.size() * sizeof(float),
                                       cudaMemcpyHostToDevice, stream_));

  RETURN_IF_ERROR(AllocateInto(&tokens_, r, "input tokens"));
  RETURN_IF_ERROR(AllocateInto(&positions_, r, "input positions"));
  RETURN_IF_ERROR(AllocateInto(&slots_, r, "input slots"));
  // Pinned staging: tokens int32 [r] | slots int32 [r] | positions int64 [r] | chunk descriptors [r].
  CUDA_RETURN_IF_ERROR(cudaMallocHost(&pinned_, static_cast<size_t>(r) * (4 + 4 + 8 + sizeof(AttentionChunkDesc))));

  RETURN_IF_ERROR(AllocateInto(&x_, r * c.dim, "activations"));
  RETURN_IF_ERROR(AllocateInto(&h_, r * c.dim, "activations"));
  RETURN_IF_ERROR(AllocateInto(&qkv_, r * qkv_width_, "activations"));
  RETURN_IF_ERROR(AllocateInto(&fq_, r * hf, "activations"));
  RETURN_IF_ERROR(AllocateInto(&fk_, r * key_heads_ * c.qk_head_dim, "activations"));
  RETURN_IF_ERROR(AllocateInto(&fk_pre_, r * int64_t{c.n_heads_kv} * c.qk_head_dim, "activations"));
  RETURN_IF_ERROR(AllocateInto(&o_, r * int64_t{c.n_heads} * c.v_head_dim, "activations"));
  RETURN_IF_ERROR(AllocateInto(&ab_, r * 2 * int64_t{c.intermediate_dim_ffn}, "activations"));
  RETURN_IF_ERROR(AllocateInto(&s_, r * int64_t{c.intermediate_dim_ffn}, "activations"));
  RETURN_IF_ERROR(AllocateInto(&last_x_, r * c.dim, "activations"));
  RETURN_IF_ERROR(AllocateInto(&logits_, r * c.vocab_size, "logits"));
  RETURN_IF_ERROR(AllocateInto(&chunks_, r * static_cast<int64_t>(sizeof(AttentionChunkDesc)), "chunk descriptors"));
  // Room for a whole pass in sub-chunks plus a partial sub-chunk for each of
  // up to 32 chunks of a round; a round that does not fit runs on the SIMT
  // kernel.
  ASSIGN_OR_RETURN(attention_workspace_,
                   ChunkedAttentionWorkspace::Create(attention_dims(), static_cast<int>(r), kWorkspacePartials));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return absl::OkStatus();
}

absl::Status CudaForward::StageDecodeInputs(const DecodeBatch& batch) {
  const size_t n = batch.slots.size();
  auto* tokens = static_cast<int32_t*>(pinned_);
  auto* slots = tokens + max_rows_;
  auto* positions = reinterpret_cast<int64_t*>(slots + max_rows_);
  std::memcpy(tokens, batch.tokens.data(), n * sizeof(int32_t));
  std::memcpy(slots, batch.slots.data(), n * sizeof(int32_t));
  std::memcpy(positions, batch.positions.data(), n * sizeof(int64_t));
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(tokens_.data(), tokens, n * 4, cudaMemcpyHostToDevice, stream_));
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(slots_.data(), slots, n * 4, cudaMemcpyHostToDevice, stream_));
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(positions_.data(), positions, n * 8, cudaMemcpyHostToDevice, stream_));
  return absl::OkStatus();
}

absl::Status CudaForward::Embed(int64_t rows) {
  const ModelConfig& c = config_;
  RETURN_IF_ERROR(
      LaunchEmbeddingGather(weights_->embedding, c.vocab_size, c.dim, tokens_.data(), rows, x_.data(), stream_));
  if (weights_->post_embed_norm != nullptr) {
    RETURN_IF_ERROR(LaunchRmsNormF32(x_.data(), c.dim, weights_->post_embed_norm, rows, c.dim, c.norm_eps, x_.data(),
                                     c.dim, stream_));
  }
  return absl::OkStatus();
}

absl::Status CudaForward::AttentionInputs(int l, int64_t rows) {
  const ModelConfig& c = config_;
  const CudaLayerWeights& w = weights_->layers[l];
  const int64_t hf = int64_t{c.n_heads} * c.qk_head_dim;
  const int64_t hkvf = int64_t{c.n_heads_kv} * c.qk_head_dim;
  RETURN_IF_ERROR(LaunchRmsNorm(x_.data(), c.dim, w.attention_norm, rows, c.dim, c.norm_eps, h_.data(), c.dim,
                                stream_));
  RETURN_IF_ERROR(gemm_.Run({.x = h_.data(), .x_stride = c.dim, .w = w.in_proj, .y = qkv_.data(),
                             .y_stride = qkv_width_, .y_is_bf16 = true, .n = rows, .in = c.dim, .out = qkv_width_}));
  // Feature-map projections of q and k (slices of qkv), in one launch at
  // decode sizes; biases added by the map.
  RETURN_IF_ERROR(gemm_.RunPair({.x = qkv_.data(), .x_stride = qkv_width_, .w = w.embed_q, .y = fq_.data(),
                                 .y_stride = hf, .n = rows, .in = c.q_width(), .out = hf},
                                {.x = qkv_.data() + c.q_width(), .x_stride = qkv_width_, .w = w.embed_kv,
                                 .y = fk_pre_.data(), .y_stride = hkvf, .n = rows, .in = c.k_width(), .out = hkvf}));
  const FeatureMapRopeShape shape{c.n_heads, c.n_heads_kv, c.qk_head_dim};
  return LaunchFeatureMapRope(shape, fq_.data(), w.embed_q_bias, fk_pre_.data(), w.embed_kv_bias, positions_.data(),
                              inv_freq_.data(), w.q_norm, w.k_norm, c.norm_eps, rows, fq_.data(), fk_.data(),
                              stream_);
}

absl::Status CudaForward::AttentionOutputAndFfn(int l, int64_t rows) {
  const ModelConfig& c = config_;
  const CudaLayerWeights& w = weights_->layers[l];
  const int64_t hdv = int64_t{c.n_heads} * c.v_head_dim;
  const int64_t ffn = c.intermediate_dim_ffn;
  RETURN_IF_ERROR(gemm_.Run({.x = o_.data(), .x_stride = hdv, .w = w.out_proj, .y = x_.data(), .y_stride = c.dim,
                             .accumulate = true, .n = rows, .in = hdv, .out = c.dim}));
  RETURN_IF_ERROR(LaunchRmsNorm(x_.data(), c.dim, w.ffn_norm, rows, c.dim, c.norm_eps, h_.data(), c.dim, stream_));
  // s = silu(W1·g) ⊙ W2·g (w12 interleaved; fused into the GEMV at decode
  // sizes).
  RETURN_IF_ERROR(gemm_.RunSwiGlu({.x = h_.data(), .x_stride = c.dim, .w12 = w.w12, .out = s_.data(),
                                   .ab = ab_.data(), .n = rows, .in = c.dim, .ffn = ffn}));
  return gemm_.Run({.x = s_.data(), .x_stride = ffn, .w = w.w3, .y = x_.data(), .y_stride = c.dim,
                    .accumulate = true, .n = rows, .in = ffn, .out = c.dim});
}

absl::Status CudaForward::Logits(const float* x, int64_t rows) {
  const ModelConfig& c = config_;
  RETURN_IF_ERROR(LaunchRmsNorm(x, c.dim, weights_->final_norm, rows, c.dim, c.norm_eps, h_.data(), c.dim, stream_));
  return gemm_.Run({.x = h_.data(), .x_stride = c.dim, .w = weights_->output, .y = logits_.data(),
                    .y_stride = c.vocab_size, .n = rows, .in = c.dim, .out = c.vocab_size});
}

AttentionDims CudaForward::attention_dims() const {
  return AttentionDims{config_.n_heads, static_cast<int>(key_heads_), config_.n_heads_kv, config_.qk_head_dim,
                       config_.v_head_dim};
}

absl::Status CudaForward::RecurrentAttention(int l, int64_t n) {
  const ModelConfig& c = config_;
  const __nv_bfloat16* v = qkv_.data() + c.q_width() + c.k_width();
  if (options_.state_dtype == StateDType::kF32) {
    const StatePoolLayer<float> pool{reinterpret_cast<float*>(state_pool_.data()), options_.num_slots, c.n_layers, l};
    return LaunchRecurrentAttention(attention_dims(), fq_.data(), fk_.data(), v, qkv_width_, gammas_.data(),
                                    slots_.data(), static_cast<int>(n), pool, o_.data(), stream_);
  }
  const StatePoolLayer<__nv_bfloat16> pool{reinterpret_cast<__nv_bfloat16*>(state_pool_.data()), options_.num_slots,
                                           c.n_layers, l};
  return LaunchRecurrentAttention(attention_dims(), fq_.data(), fk_.data(), v, qkv_width_, gammas_.data(),
                                  slots_.data(), static_cast<int>(n), pool, o_.data(), stream_);
}

absl::Status CudaForward::ChunkedAttention(int l, const AttentionChunkDesc* chunks,
                                           const AttentionChunkDesc* host_chunks, int num_chunks, int64_t rows) {
  const ModelConfig& c = config_;
  const __nv_bfloat16* v = qkv_.data() + c.q_width() + c.k_width();
  if (options_.state_dtype == StateDType::kF32) {
    const StatePoolLayer<float> pool{reinterpret_cast<float*>(state_pool_.data()), options_.num_slots, c.n_layers, l};
    return LaunchChunkedAttention(attention_dims(), fq_.data(), fk_.data(), v, qkv_width_, gammas_.data(), chunks,
                                  num_chunks, static_cast<int>(rows), pool, o_.data(), stream_,
                                  ChunkedAttentionKernel::kAuto, &attention_workspace_, host_chunks);
  }
  const StatePoolLayer<__nv_bfloat16> pool{reinterpret_cast<__nv_bfloat16*>(state_pool_.data()), options_.num_slots,
                                           c.n_layers, l};
  return LaunchChunkedAttention(attention_dims(), fq_.data(), fk_.data(), v, qkv_width_, gammas_.data(), chunks,
                                num_chunks, static_cast<int>(rows), pool, o_.data(), stream_,
                                ChunkedAttentionKernel::kAuto, &attention_workspace_, host_chunks);
}

absl::Status CudaForward::DecodeForward(int64_t n) {
  RETURN_IF_ERROR(Embed(n));
  for (int l = 0; l < config_.n_layers; ++l) {
    RETURN_IF_ERROR(AttentionInputs(l, n));
    RETURN_IF_ERROR(RecurrentAttention(l, n));
    RETURN_IF_ERROR(AttentionOutputAndFfn(l, n));
  }
  return Logits(x_.data(), n);
}

absl::Status CudaForward::Prefill(absl::Span<const PassSequence> pass, int64_t chunk, bool all_logits) {
  const ModelConfig& c = config_;
  if (pass.empty()) return absl::OkStatus();
  const int64_t rows = pass.back().row_begin + static_cast<int64_t>(pass.back().tokens.size());
  if (rows > max_rows_ || chunk < 1) {
    return absl::InvalidArgumentError(absl::StrCat("prefill pass of ", rows, " rows (at most ", max_rows_,
                                                   "), chunk ", chunk));
  }
  // Inputs: tokens and positions of every row, and the chunk rounds: round r
  // holds chunk r (rows [r·chunk, (r+1)·chunk)) of every sequence that long;
  // a launch per round and layer, so that chunks of one sequence run in order.
  auto* tokens = static_cast<int32_t*>(pinned_);
  auto* positions = reinterpret_cast<int64_t*>(tokens + 2 * max_rows_);
  auto* descs = reinterpret_cast<AttentionChunkDesc*>(positions + max_rows_);
  int64_t longest = 0;
  for (const PassSequence& s : pass) {
    longest = std::max<int64_t>(longest, static_cast<int64_t>(s.tokens.size()));
    for (size_t t = 0; t < s.tokens.size(); ++t) {
      tokens[s.row_begin + static_cast<int64_t>(t)] = s.tokens[t];
      positions[s.row_begin + static_cast<int64_t>(t)] = s.start_position + static_cast<int64_t>(t);
    }
  }
  const int64_t rounds = (longest + chunk - 1) / chunk;
  round_chunks_.assign(static_cast<size_t>(rounds), 0);
  std::vector<AttentionChunkDesc>& all = descriptors_;
  all.clear();
  for (int64_t r = 0; r < rounds; ++r) {
    for (const PassSequence& s : pass) {
      const int64_t begin = r * chunk;
      const int64_t len = std::min<int64_t>(chunk, static_cast<int64_t>(s.tokens.size()) - begin);
      if (len <= 0) continue;
      all.push_back(AttentionChunkDesc{static_cast<int32_t>(s.row_begin + begin), static_cast<int32_t>(len), s.slot});
      ++round_chunks_[static_cast<size_t>(r)];
    }
  }
  // At most one descriptor per row, so they fit their staging area.
  std::memcpy(descs, all.data(), all.size() * sizeof(AttentionChunkDesc));
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(tokens_.data(), tokens, static_cast<size_t>(rows) * 4, cudaMemcpyHostToDevice, stream_));
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(positions_.data(), positions, static_cast<size_t>(rows) * 8, cudaMemcpyHostToDevice, stream_));
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(chunks_.data(), descs, all.size() * sizeof(AttentionChunkDesc),
                                       cudaMemcpyHostToDevice, stream_));
  const auto* device_descs = reinterpret_cast<const AttentionChunkDesc*>(chunks_.data());

  RETURN_IF_ERROR(Embed(rows));
  for (int l = 0; l < c.n_layers; ++l) {
    RETURN_IF_ERROR(AttentionInputs(l, rows));
    int64_t first = 0;
    for (int64_t count : round_chunks_) {
      RETURN_IF_ERROR(ChunkedAttention(l, device_descs + first, all.data() + first, static_cast<int>(count), rows));
      first += count;
    }
    RETURN_IF_ERROR(AttentionOutputAndFfn(l, rows));
  }
  if (all_logits) return Logits(x_.data(), rows);
  // Only each entry's last row: gather them, then the head on pass.size() rows.
  for (size_t p = 0; p < pass.size(); ++p) {
    const int64_t last = pass[p].row_begin + static_cast<int64_t>(pass[p].tokens.size()) - 1;
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(last_x_.data() + static_cast<int64_t>(p) * c.dim, x_.data() + last * c.dim,
                                         static_cast<size_t>(c.dim) * sizeof(float), cudaMemcpyDeviceToDevice,
                                         stream_));
  }
  return Logits(last_x_.data(), static_cast<int64_t>(pass.size()));
}

absl::Status CudaForward::ZeroSlot(int32_t slot) {
  CUDA_RETURN_IF_ERROR(cudaMemsetAsync(slot_state(slot), 0, config_.state_numel() * state_elem_bytes(), stream_));
  return absl::OkStatus();
}

absl::Status CudaForward::CopySlot(int32_t src, int32_t dst) {
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(slot_state(dst), slot_state(src), config_.state_numel() * state_elem_bytes(),
                                       cudaMemcpyDeviceToDevice, stream_));
  return absl::OkStatus();
}

absl::Status CudaForward::ReadSlot(int32_t slot, float* host) {
  const size_t numel = static_cast<size_t>(config_.state_numel());
  if (options_.state_dtype == StateDType::kF32) {
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host, slot_state(slot), numel * 4, cudaMemcpyDeviceToHost, stream_));
    return absl::OkStatus();
  }
  std::vector<uint16_t> raw(numel);
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(raw.data(), slot_state(slot), numel * 2, cudaMemcpyDeviceToHost, stream_));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  for (size_t i = 0; i < numel; ++i) host[i] = BF16ToFloat(raw[i]);
  return absl::OkStatus();
}

absl::Status CudaForward::WriteSlot(int32_t slot, const float* host) {
  const size_t numel = static_cast<size_t>(config_.state_numel());
  if (options_.state_dtype == StateDType::kF32) {
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(slot_state(slot), host, numel * 4, cudaMemcpyHostToDevice, stream_));
    return absl::OkStatus();
  }
  std::vector<uint16_t> raw(numel);
  for (size_t i = 0; i < numel; ++i) raw[i] = FloatToBF16(host[i]);
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(slot_state(slot), raw.data(), numel * 2, cudaMemcpyHostToDevice, stream_));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));  // raw dies here
  return absl::OkStatus();
}

}  // namespace supra::cuda

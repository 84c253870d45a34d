#include "engine/cpu/cpu_model.h"

#include <cmath>
#include <utility>

#include "engine/model/decay.h"
#include "engine/util/status_macros.h"

namespace supra::cpu {
namespace {

constexpr double kGroupNormEps = 1e-5;  // fixed by the reference, not norm_eps

ConstMatrix View(const std::vector<float>& data, int64_t rows, int64_t cols) {
  return ConstMatrix{data.data(), rows, cols, cols};
}
Matrix View(std::vector<float>& data, int64_t rows, int64_t cols) { return Matrix{data.data(), rows, cols, cols}; }
ConstMatrix Const(Matrix m) { return ConstMatrix{m.data, m.rows, m.cols, m.stride}; }

}  // namespace

CpuModel::CpuModel(const ModelConfig& config, CpuWeights weights, ThreadPool* pool)
    : config_(config), weights_(std::move(weights)), pool_(pool), inv_freq_(RopeInverseFrequencies(config)) {
  for (double g : DecayGammas(config)) gammas_.push_back(static_cast<float>(g));
  shape_ = AttentionShape{.heads = config.n_heads,
                          .key_heads = config.apply_qk_norm ? config.n_heads : config.n_heads_kv,
                          .value_heads = config.n_heads_kv,
                          .features = config.qk_head_dim,
                          .value_dim = config.v_head_dim};
  layer_state_numel_ = int64_t{config.n_heads} * config.qk_head_dim * config.v_head_dim;
  qkv_width_ = config.q_width() + config.k_width() + config.v_width();
}

void CpuModel::Reserve(int64_t rows) {
  rows_ = rows;
  if (rows <= capacity_) return;
  const ModelConfig& c = config_;
  const int64_t hf = int64_t{c.n_heads} * c.qk_head_dim;
  x_.resize(rows * c.dim);
  normed_.resize(rows * c.dim);
  qkv_.resize(rows * qkv_width_);
  fq_.resize(rows * hf);
  fk_.resize(rows * c.n_heads_kv * c.qk_head_dim);
  if (c.apply_qk_norm) fk_expanded_.resize(rows * hf);
  attn_.resize(rows * c.n_heads * c.v_head_dim);
  ab_.resize(rows * 2 * c.intermediate_dim_ffn);
  hidden_ffn_.resize(rows * c.intermediate_dim_ffn);
  cos_.resize(rows * inv_freq_.size());
  sin_.resize(rows * inv_freq_.size());
  capacity_ = rows;
}

ConstMatrix CpuModel::hidden() const { return View(x_, rows_, config_.dim); }

absl::Status CpuModel::Forward(absl::Span<const int32_t> tokens, absl::Span<const int64_t> positions,
                               absl::Span<float* const> row_states, absl::Span<const SequenceChunk> chunks) {
  const ModelConfig& c = config_;
  const int64_t m = static_cast<int64_t>(tokens.size());
  const double eps = c.norm_eps;
  Reserve(m);
  RETURN_IF_ERROR(RopeAngles(positions, inv_freq_, cos_.data(), sin_.data()));

  const Matrix x = View(x_, m, c.dim);
  EmbeddingGather(weights_.embedding.data(), c.dim, tokens, x.data);
  if (c.post_embed_norm) RmsNorm(Const(x), weights_.post_embed_norm.data(), eps, x, pool_);

  const int64_t hf = int64_t{c.n_heads} * c.qk_head_dim, kvf = int64_t{c.n_heads_kv} * c.qk_head_dim;
  const int64_t half = c.qk_head_dim / 2, ffn = c.intermediate_dim_ffn;
  const float key_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.qk_head_dim)));
  const Matrix normed = View(normed_, m, c.dim);
  const Matrix qkv = View(qkv_, m, qkv_width_);
  const Matrix fq = View(fq_, m, hf);
  const Matrix fk = View(fk_, m, kvf);
  const Matrix attn = View(attn_, m, int64_t{c.n_heads} * c.v_head_dim);
  const Matrix ab = View(ab_, m, 2 * ffn);
  const Matrix hidden_ffn = View(hidden_ffn_, m, ffn);
  // Column slices of in_proj's output.
  const ConstMatrix q{qkv.data, m, c.q_width(), qkv.stride};
  const ConstMatrix k{qkv.data + c.q_width(), m, c.k_width(), qkv.stride};
  const ConstMatrix v{qkv.data + c.q_width() + c.k_width(), m, c.v_width(), qkv.stride};

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = weights_.layers[l];
    // Attention: h = RMSNorm(x); [q; k; v] = in_proj·h.
    RmsNorm(Const(x), w.attention_norm.data(), eps, normed, pool_);
    Linear(Const(normed), ConstMatrix{w.in_proj.data(), qkv_width_, c.dim, c.dim}, nullptr, qkv, false, pool_);
    // Feature maps φq, φk (the key shares the query's map when Hkv == H).
    Linear(q, ConstMatrix{w.embed.data(), hf, c.q_width(), c.q_width()}, nullptr, fq, false, pool_);
    FeatureMap(fq, w.embed_bias.data());
    const bool shared = w.embed_kv.empty();
    Linear(k, ConstMatrix{shared ? w.embed.data() : w.embed_kv.data(), kvf, c.k_width(), c.k_width()}, nullptr, fk,
           false, pool_);
    FeatureMap(fk, shared ? w.embed_bias.data() : w.embed_kv_bias.data());
    Matrix keys = fk;
    if (c.apply_qk_norm) {
      keys = View(fk_expanded_, m, hf);
      QkNorm(fq, w.q_norm.data(), Const(fk), w.k_norm.data(), c.n_heads, c.n_heads_kv, eps, keys, pool_);
    }
    // Rotary embedding; keys also take the 1/sqrt(F) scale.
    ApplyRope(fq, c.n_heads, half, cos_.data(), sin_.data(), 1.0f);
    ApplyRope(keys, shape_.key_heads, half, cos_.data(), sin_.data(), key_scale);
    Attention(l, row_states, chunks, Const(fq), Const(keys), v, attn);
    GroupNorm(attn, c.v_head_dim, kGroupNormEps, pool_);
    // x += out_proj · o.
    Linear(Const(attn), ConstMatrix{w.out_proj.data(), c.dim, attn.cols, attn.cols}, nullptr, x, true, pool_);

    // SwiGLU feed-forward: x += w3 · (silu(W1·g) ⊙ W2·g), g = RMSNorm(x).
    RmsNorm(Const(x), w.ffn_norm.data(), eps, normed, pool_);
    Linear(Const(normed), ConstMatrix{w.w12.data(), 2 * ffn, c.dim, c.dim}, nullptr, ab, false, pool_);
    SwiGlu(Const(ab), hidden_ffn, pool_);
    Linear(Const(hidden_ffn), ConstMatrix{w.w3.data(), c.dim, ffn, ffn}, nullptr, x, true, pool_);
  }
  return absl::OkStatus();
}

void CpuModel::Attention(int layer, absl::Span<float* const> row_states, absl::Span<const SequenceChunk> chunks,
                         ConstMatrix q, ConstMatrix k, ConstMatrix v, Matrix out) {
  const int64_t offset = layer * layer_state_numel_;
  if (!row_states.empty()) {
    layer_row_states_.resize(row_states.size());
    for (size_t i = 0; i < row_states.size(); ++i) layer_row_states_[i] = row_states[i] + offset;
    RecurrentAttention(shape_, q, k, v, gammas_, layer_row_states_, out, pool_);
    return;
  }
  layer_chunks_.resize(chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    layer_chunks_[i] = AttentionChunk{chunks[i].row_begin, chunks[i].length, chunks[i].state + offset};
  }
  ChunkedAttention(shape_, q, k, v, gammas_, layer_chunks_, out, pool_);
}

void CpuModel::Logits(ConstMatrix x, Matrix logits) {
  const int64_t rows = x.rows;
  if (static_cast<int64_t>(head_normed_.size()) < rows * config_.dim) head_normed_.resize(rows * config_.dim);
  FinalLogits(x, weights_.norm.data(), config_.norm_eps,
              ConstMatrix{weights_.head(), config_.vocab_size, config_.dim, config_.dim},
              View(head_normed_, rows, config_.dim), logits, pool_);
}

}  // namespace supra::cpu

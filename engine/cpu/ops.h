// The float32 operations of the CPU backend, one per .cc file in this
// directory (supra-model.md §3-§4). Shapes are row-major; a "stride" is the
// distance in floats between consecutive rows. Ops that take a ThreadPool
// split their work across it (nullptr runs serially); every output element is
// computed by the same instruction sequence whatever the batch size, the
// position of the row in the batch or the thread count, so a sequence's
// results do not depend on what it is batched with.
#ifndef SUPRA_ENGINE_CPU_OPS_H_
#define SUPRA_ENGINE_CPU_OPS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/model/config.h"
#include "engine/util/thread_pool.h"

namespace supra::cpu {

// A strided row-major float32 matrix.
struct ConstMatrix {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;  // >= cols
  const float* row(int64_t i) const { return data + i * stride; }
};
struct Matrix {
  float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;  // >= cols
  float* row(int64_t i) const { return data + i * stride; }
};

// ---- embedding.cc -----------------------------------------------------------
// out[i] = table[tokens[i]]. The caller has checked every token is in [0, V).
void EmbeddingGather(const float* table,                // [V, D]
                     int64_t dim,                       // D
                     absl::Span<const int32_t> tokens,  // [n]
                     float* out);                       // [n, D]

// ---- rms_norm.cc ------------------------------------------------------------
// y = x / sqrt(mean(x²) + eps) ⊙ weight, row by row; y may alias x.
void RmsNorm(ConstMatrix x,         // [n, d]
             const float* weight,   // [d]
             double eps, Matrix y,  // [n, d]
             ThreadPool* pool);

// ---- gemm_nt.cc -------------------------------------------------------------
// Serial y = x · wᵀ (or y += x · wᵀ with accumulate): the register-tiled
// kernel under Linear and the chunked attention.
void GemmNT(ConstMatrix x,  // [n, k]
            ConstMatrix w,  // [m, k]
            Matrix y,       // [n, m]
            bool accumulate);

// ---- linear.cc --------------------------------------------------------------
// y = x · weightᵀ (+ bias), or y += x · weightᵀ (+ bias) with accumulate (the
// residual connections). Threaded over blocks of rows and output features.
void Linear(ConstMatrix x,       // [n, in]
            ConstMatrix weight,  // [out, in], nn.Linear layout
            const float* bias,   // [out] or nullptr
            Matrix y,            // [n, out]
            bool accumulate, ThreadPool* pool);

// ---- feature_map.cc ---------------------------------------------------------
// The SUPRA kernel's feature map after its projection: x = ReLU(x + bias).
void FeatureMap(Matrix x,            // [n, width]
                const float* bias);  // [width]

// ---- qk_norm.cc -------------------------------------------------------------
// apply_qk_norm (§3.5): RMSNorm of the flattened query features in place, and
// of the key features after grouped-query expansion to every query head.
void QkNorm(Matrix q,               // [n, H·F], normalised in place
            const float* q_weight,  // [H·F]
            ConstMatrix k,          // [n, Hkv·F]
            const float* k_weight,  // [H·F]
            int64_t heads, int64_t kv_heads, double eps,
            Matrix k_expanded,  // [n, H·F]
            ThreadPool* pool);

// ---- rope.cc ----------------------------------------------------------------
// inv_freq_i = 1 / (rotary_scale · base^(2i/Dh)), i < Dh/2, in float64.
std::vector<double> RopeInverseFrequencies(const ModelConfig& config);  // [Dh/2]

// cos/sin of θ = p · inv_freq_i for each row's position p, with θ computed and
// reduced modulo 2π in float64 so that huge positions keep their precision.
// OUT_OF_RANGE beyond kMaxPosition, INVALID_ARGUMENT for a negative position.
absl::Status RopeAngles(absl::Span<const int64_t> positions,  // [n]
                        absl::Span<const double> inv_freq,    // [half]
                        float* cos,                           // [n, half]
                        float* sin);                          // [n, half]

// x ← scale · rope(x) for every head of every row (non-interleaved halves).
void ApplyRope(Matrix x,  // [n, heads·2·half]
               int64_t heads, int64_t half,
               const float* cos,  // [n, half]
               const float* sin,  // [n, half]
               float scale);

// ---- linear attention (recurrent_attention.cc, chunked_attention.cc) -------
// Head layout of one layer's attention inputs. Query head h reads key head
// h / (H / key_heads) and value head h / (H / value_heads); key_heads is H
// with qk norm (each head has its own normalised key), else Hkv.
struct AttentionShape {
  int64_t heads = 0;        // H
  int64_t key_heads = 0;    // Hk
  int64_t value_heads = 0;  // Hkv
  int64_t features = 0;     // F
  int64_t value_dim = 0;    // Dv
};

// One recurrent step per row (§3.9): S = P + k̃⊗v; o = q·S; P ← γ·S. Row i
// updates states[i], a layer's state of its sequence; states are distinct.
void RecurrentAttention(const AttentionShape& shape,
                        ConstMatrix q,                    // [n, H·F]
                        ConstMatrix k,                    // [n, Hk·F], rope'd and scaled
                        ConstMatrix v,                    // [n, Hkv·Dv]
                        absl::Span<const float> gammas,   // [H]
                        absl::Span<float* const> states,  // [n] -> [H, F, Dv]
                        Matrix out,                       // [n, H·Dv]
                        ThreadPool* pool);

// A run of consecutive rows that continue one sequence (§4).
struct AttentionChunk {
  int64_t row_begin = 0;   // first row in q/k/v/out
  int64_t length = 0;      // C
  float* state = nullptr;  // [H, F, Dv], this layer's state of the sequence
};

// Chunked linear attention over several chunks (of distinct sequences):
//   o_i = γ^i (q_i·P) + Σ_{j≤i} γ^{i−j} (q_i·k̃_j) v_j,
//   P ← γ^C P + Σ_j γ^{C−j} k̃_jᵀ v_j,
// with γ^t = exp(t·log γ) (never γ^i/γ^j, which overflows for small γ).
void ChunkedAttention(const AttentionShape& shape,
                      ConstMatrix q,                            // [rows, H·F]
                      ConstMatrix k,                            // [rows, Hk·F]
                      ConstMatrix v,                            // [rows, Hkv·Dv]
                      absl::Span<const float> gammas,           // [H]
                      absl::Span<const AttentionChunk> chunks,  // disjoint rows
                      Matrix out,                               // [rows, H·Dv]
                      ThreadPool* pool);

// ---- group_norm.cc ----------------------------------------------------------
// Per-head normalisation without affine parameters (§3.10): each run of
// `group` values becomes (x − mean) / sqrt(biased var + eps).
void GroupNorm(Matrix x,  // [n, heads·group]
               int64_t group, double eps, ThreadPool* pool);

// ---- swiglu.cc --------------------------------------------------------------
// out = silu(a) ⊙ b, where ab's first `ffn` columns are a = W1·g, the rest b.
void SwiGlu(ConstMatrix ab,  // [n, 2·ffn]
            Matrix out,      // [n, ffn]
            ThreadPool* pool);

// ---- logits.cc --------------------------------------------------------------
// logits = output · (RMSNorm(x) ⊙ norm_weight), the model's head.
void FinalLogits(ConstMatrix x,             // [n, D]
                 const float* norm_weight,  // [D]
                 double eps,
                 ConstMatrix output,  // [V, D]
                 Matrix normed,       // [n, D], scratch
                 Matrix logits,       // [n, V]
                 ThreadPool* pool);

}  // namespace supra::cpu

#endif  // SUPRA_ENGINE_CPU_OPS_H_

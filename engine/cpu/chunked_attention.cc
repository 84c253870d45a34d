// The chunked (parallel) form of SUPRA's linear attention (§4), used by
// prefill. For a chunk of C tokens entering with state P, per query head:
//   O = diag(γ^i) · (Q·P)                   carried state    [C,F]·[F,Dv]
//     + (M ⊙ Q·K̃ᵀ) · V,  M_ij = γ^(i−j)[j≤i]  inside the chunk [C,C]·[C,Dv]
//   P ← γ^C · P + (diag(γ^(C−j)) · K̃)ᵀ · V     state update    [F,C]·[C,Dv]
// Three matrix products instead of C dependent steps. Decay powers are
// exp(t · log γ) for 0 ≤ t ≤ C, each at most 1: head 0 of a 32-head model has
// γ ≈ 0.43, and γ^-255 would overflow where γ^255 merely underflows to 0.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/ops.h"
#include "engine/cpu/vec.h"

namespace supra::cpu {
namespace {

// Query rows per block of the intra-chunk scores: keeps the score block and
// the matching rows of Q in L1.
constexpr int64_t kScoreRows = 16;

struct HeadView {
  ConstMatrix q;  // [C, F], this head's queries (strided rows)
  ConstMatrix k;  // [C, F], its keys
  ConstMatrix v;  // [C, Dv], its values
  Matrix o;       // [C, Dv], its outputs
  float* state;   // [F, Dv]
};

// Per-thread buffers, sized for the longest chunk of a call.
struct Scratch {
  explicit Scratch(int64_t max_len, int64_t dv) : scores(kScoreRows * max_len), decay(max_len + 1), acc(dv) {}
  std::vector<float> scores;  // [kScoreRows, C], q_i·k̃_j
  std::vector<double> decay;  // [C + 1], decay[t] = γ^t
  std::vector<double> acc;    // [Dv]
};

// One (chunk, head). Outputs and the new state are sums of up to C + F terms
// of both signs; they are accumulated in float64 and rounded once, which
// keeps the chunked form within ~1e-6 of the recurrent one even without decay
// over thousands of tokens (float32 sums drift to ~1e-5, and GroupNorm,
// which divides by the spread of o, passes that on to the logits).
void ChunkHead(const HeadView& hv, float gamma, Scratch& scratch) {
  const int64_t c_len = hv.q.rows, f_dim = hv.q.cols, dv = hv.v.cols;
  double* decay = scratch.decay.data();
  double* acc = scratch.acc.data();
  const double log_gamma = std::log(static_cast<double>(gamma));
  for (int64_t t = 0; t <= c_len; ++t) decay[t] = std::exp(static_cast<double>(t) * log_gamma);

  for (int64_t i0 = 0; i0 < c_len; i0 += kScoreRows) {
    // Scores of a block of query rows against the keys they may see (j ≤ i).
    const int64_t rows = std::min(kScoreRows, c_len - i0), keys = i0 + rows;
    GemmNT(ConstMatrix{hv.q.row(i0), rows, f_dim, hv.q.stride}, ConstMatrix{hv.k.data, keys, f_dim, hv.k.stride},
           Matrix{scratch.scores.data(), rows, keys, keys}, /*accumulate=*/false);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      const float* q = hv.q.row(i);
      const float* s = scratch.scores.data() + r * keys;
      // o_i = γ^i (q_i·P) + Σ_{j≤i} γ^(i−j) (q_i·k̃_j) v_j.
      std::fill(acc, acc + dv, 0.0);
      for (int64_t f = 0; f < f_dim; ++f) AxpyToDouble(q[f], hv.state + f * dv, acc, dv);
      for (int64_t d = 0; d < dv; ++d) acc[d] *= decay[i];
      for (int64_t j = 0; j <= i; ++j) AxpyToDouble(s[j] * decay[i - j], hv.v.row(j), acc, dv);
      float* o = hv.o.row(i);
      for (int64_t d = 0; d < dv; ++d) o[d] = static_cast<float>(acc[d]);
    }
  }

  // P ← γ^C · P + Σ_j γ^(C−j) k̃_jᵀ v_j, row f of P at a time.
  for (int64_t f = 0; f < f_dim; ++f) {
    float* p = hv.state + f * dv;
    for (int64_t d = 0; d < dv; ++d) acc[d] = decay[c_len] * p[d];
    for (int64_t j = 0; j < c_len; ++j) AxpyToDouble(decay[c_len - j] * hv.k.row(j)[f], hv.v.row(j), acc, dv);
    for (int64_t d = 0; d < dv; ++d) p[d] = static_cast<float>(acc[d]);
  }
}

}  // namespace

void ChunkedAttention(const AttentionShape& shape, ConstMatrix q, ConstMatrix k, ConstMatrix v,
                      absl::Span<const float> gammas, absl::Span<const AttentionChunk> chunks, Matrix out,
                      ThreadPool* pool) {
  const int64_t heads = shape.heads, f_dim = shape.features, dv = shape.value_dim;
  const int64_t key_group = heads / shape.key_heads, value_group = heads / shape.value_heads;
  int64_t max_len = 0;
  for (const AttentionChunk& chunk : chunks) max_len = std::max(max_len, chunk.length);
  auto run = [&](int64_t begin, int64_t end) {
    Scratch scratch(max_len, dv);
    for (int64_t item = begin; item < end; ++item) {
      const AttentionChunk& chunk = chunks[item / heads];
      const int64_t h = item % heads, r0 = chunk.row_begin, len = chunk.length;
      const HeadView view{
          .q = ConstMatrix{q.row(r0) + h * f_dim, len, f_dim, q.stride},
          .k = ConstMatrix{k.row(r0) + h / key_group * f_dim, len, f_dim, k.stride},
          .v = ConstMatrix{v.row(r0) + h / value_group * dv, len, dv, v.stride},
          .o = Matrix{out.row(r0) + h * dv, len, dv, out.stride},
          .state = chunk.state + h * f_dim * dv,
      };
      ChunkHead(view, gammas[h], scratch);
    }
  };
  const int64_t items = static_cast<int64_t>(chunks.size()) * heads;
  if (pool == nullptr) {
    run(0, items);
  } else {
    pool->ParallelFor(items, run);
  }
}

}  // namespace supra::cpu

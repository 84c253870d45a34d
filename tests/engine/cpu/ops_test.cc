// Every CPU op against a plain float64 loop on random, non-zero inputs.
#include "engine/cpu/ops.h"

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

#include "engine/backend.h"
#include "engine/util/thread_pool.h"
#include "gtest/gtest.h"
#include "tests/engine/cpu/cpu_test_util.h"

namespace supra::cpu {
namespace {

using ::supra::testing::RelMaxDiff;

std::vector<float> Uniform(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

ConstMatrix CView(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t stride) {
  return ConstMatrix{v.data(), rows, cols, stride};
}
Matrix MView(std::vector<float>& v, int64_t rows, int64_t cols, int64_t stride) {
  return Matrix{v.data(), rows, cols, stride};
}

TEST(EmbeddingGatherTest, CopiesRows) {
  const std::vector<float> table = Uniform(10 * 6, 1);
  const std::vector<int32_t> tokens = {3, 9, 0, 3};
  std::vector<float> out(4 * 6);
  EmbeddingGather(table.data(), 6, tokens, out.data());
  for (int i = 0; i < 4; ++i) {
    for (int d = 0; d < 6; ++d) EXPECT_EQ(out[i * 6 + d], table[tokens[i] * 6 + d]);
  }
}

TEST(RmsNormTest, MatchesFloat64) {
  ThreadPool pool(2);
  const int64_t n = 37, d = 200, stride = 203;
  const std::vector<float> x = Uniform(n * stride, 2, -3.0f, 5.0f);
  const std::vector<float> w = Uniform(d, 3, 0.8f, 1.2f);
  std::vector<float> y(n * d);
  RmsNorm(CView(x, n, d, stride), w.data(), 1e-5, MView(y, n, d, d), &pool);
  std::vector<float> ref(n * d);
  for (int64_t r = 0; r < n; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += double{x[r * stride + i]} * x[r * stride + i];
    const double inv = 1 / std::sqrt(ss / d + 1e-5);
    for (int64_t i = 0; i < d; ++i) ref[r * d + i] = static_cast<float>(x[r * stride + i] * inv * w[i]);
  }
  EXPECT_LE(RelMaxDiff(y, ref), 1e-6);
}

// y = x·wᵀ (+ b) (+ y) in float64.
std::vector<float> LinearReference(const std::vector<float>& x, int64_t ldx, const std::vector<float>& w,
                                   const float* bias, int64_t n, int64_t in, int64_t out, const std::vector<float>& y0,
                                   int64_t ldy, bool accumulate) {
  std::vector<float> y = y0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double s = accumulate ? y0[r * ldy + o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += double{x[r * ldx + i]} * w[o * in + i];
      if (bias != nullptr) s += bias[o];
      y[r * ldy + o] = static_cast<float>(s);
    }
  }
  return y;
}

struct LinearShape {
  int64_t n, in, out;
};

class LinearTest : public ::testing::TestWithParam<LinearShape> {};

TEST_P(LinearTest, MatchesFloat64) {
  const auto [n, in, out] = GetParam();
  ThreadPool pool(3);
  const int64_t ldx = in + 3, ldy = out + 5;  // strided views, as the model's column slices
  const std::vector<float> x = Uniform(n * ldx, 10 + n);
  const std::vector<float> w = Uniform(out * in, 20 + in);
  const std::vector<float> b = Uniform(out, 30 + out, -0.1f, 0.1f);
  const std::vector<float> y0 = Uniform(n * ldy, 40);
  for (bool accumulate : {false, true}) {
    for (const float* bias : {static_cast<const float*>(nullptr), b.data()}) {
      std::vector<float> y = y0;
      Linear(CView(x, n, in, ldx), CView(w, out, in, in), bias, MView(y, n, out, ldy), accumulate, &pool);
      const std::vector<float> ref = LinearReference(x, ldx, w, bias, n, in, out, y0, ldy, accumulate);
      EXPECT_LE(RelMaxDiff(y, ref), 2e-6) << "accumulate " << accumulate << " bias " << (bias != nullptr);
    }
  }
}

// Each row's result is bit-identical whatever it is batched with, wherever it
// sits in the batch and however many threads run: the backend's
// batch == alone guarantee rests on it.
TEST_P(LinearTest, RowsDoNotDependOnTheBatch) {
  const auto [n, in, out] = GetParam();
  ThreadPool pool(3);
  const std::vector<float> x = Uniform(n * in, 50 + n);
  const std::vector<float> w = Uniform(out * in, 60 + in);
  std::vector<float> batched(n * out);
  Linear(CView(x, n, in, in), CView(w, out, in, in), nullptr, MView(batched, n, out, out), false, &pool);
  for (int64_t r = 0; r < n; r += std::max<int64_t>(1, n / 7)) {
    std::vector<float> alone(out);
    Linear(ConstMatrix{x.data() + r * in, 1, in, in}, CView(w, out, in, in), nullptr, MView(alone, 1, out, out), false,
           nullptr);
    for (int64_t o = 0; o < out; ++o) ASSERT_EQ(alone[o], batched[r * out + o]) << "row " << r << " col " << o;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearTest,
                         ::testing::Values(LinearShape{1, 1, 1}, LinearShape{1, 64, 130}, LinearShape{2, 7, 9},
                                           LinearShape{3, 33, 17}, LinearShape{5, 515, 67}, LinearShape{70, 1030, 66},
                                           LinearShape{130, 96, 200}, LinearShape{17, 4, 3}));

TEST(LinearTest, EmptyInnerDimensionIsAZeroSum) {
  std::vector<float> y = {5, 6};
  GemmNT(ConstMatrix{nullptr, 1, 0, 0}, ConstMatrix{nullptr, 2, 0, 0}, Matrix{y.data(), 1, 2, 2}, false);
  EXPECT_EQ(y, (std::vector<float>{0, 0}));
}

TEST(FeatureMapTest, BiasThenRelu) {
  std::vector<float> x = Uniform(5 * 12, 70);
  const std::vector<float> b = Uniform(10, 71, -0.5f, 0.5f);
  const std::vector<float> before = x;
  FeatureMap(MView(x, 5, 10, 12), b.data());
  int zeros = 0;
  for (int r = 0; r < 5; ++r) {
    for (int i = 0; i < 12; ++i) {
      const float expected = i < 10 ? std::max(before[r * 12 + i] + b[i], 0.0f) : before[r * 12 + i];
      EXPECT_EQ(x[r * 12 + i], expected);
      zeros += i < 10 && expected == 0.0f;
    }
  }
  EXPECT_GT(zeros, 0);  // the ReLU did cut something
}

TEST(QkNormTest, NormalisesQueriesAndExpandedKeys) {
  ThreadPool pool(2);
  const int64_t n = 6, heads = 6, kv_heads = 2, f = 8, hf = heads * f, kvf = kv_heads * f;
  std::vector<float> q = Uniform(n * hf, 80, 0.0f, 2.0f);
  const std::vector<float> k = Uniform(n * kvf, 81, 0.0f, 2.0f);
  const std::vector<float> qw = Uniform(hf, 82, 0.8f, 1.2f), kw = Uniform(hf, 83, 0.8f, 1.2f);
  const std::vector<float> q0 = q;
  std::vector<float> kx(n * hf);
  QkNorm(MView(q, n, hf, hf), qw.data(), CView(k, n, kvf, kvf), kw.data(), heads, kv_heads, 1e-5, MView(kx, n, hf, hf),
         &pool);
  std::vector<float> q_ref(n * hf), k_ref(n * hf);
  for (int64_t r = 0; r < n; ++r) {
    std::vector<double> expanded(hf);
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < f; ++i) expanded[h * f + i] = k[r * kvf + h / (heads / kv_heads) * f + i];
    }
    double sq = 0, sk = 0;
    for (int64_t i = 0; i < hf; ++i) {
      sq += double{q0[r * hf + i]} * q0[r * hf + i];
      sk += expanded[i] * expanded[i];
    }
    for (int64_t i = 0; i < hf; ++i) {
      q_ref[r * hf + i] = static_cast<float>(q0[r * hf + i] / std::sqrt(sq / hf + 1e-5) * qw[i]);
      k_ref[r * hf + i] = static_cast<float>(expanded[i] / std::sqrt(sk / hf + 1e-5) * kw[i]);
    }
  }
  EXPECT_LE(RelMaxDiff(q, q_ref), 1e-6);
  EXPECT_LE(RelMaxDiff(kx, k_ref), 1e-6);
}

TEST(RopeTest, InverseFrequencies) {
  ModelConfig c = ::supra::testing::TinyConfig(64, 1, 4, 4, 8, 32, 16);
  c.rotary_base_frequency = 500000;
  c.rotary_scale = 2.0;
  const std::vector<double> inv = RopeInverseFrequencies(c);
  ASSERT_EQ(inv.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_DOUBLE_EQ(inv[i], 1.0 / (2.0 * std::pow(500000.0, 2.0 * i / 16)));
}

// x ← scale · rope(x), in float64 from float64 angles.
void RopeReference(std::vector<float>& x, int64_t n, int64_t heads, int64_t half, const std::vector<int64_t>& pos,
                   const std::vector<double>& inv, double scale) {
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x.data() + (r * heads + h) * 2 * half;
      for (int64_t i = 0; i < half; ++i) {
        const double theta = static_cast<double>(pos[r]) * inv[i];
        const double a = v[i], b = v[i + half];
        v[i] = static_cast<float>((a * std::cos(theta) - b * std::sin(theta)) * scale);
        v[i + half] = static_cast<float>((b * std::cos(theta) + a * std::sin(theta)) * scale);
      }
    }
  }
}

TEST(RopeTest, MatchesFloat64AtSmallAndHugePositions) {
  ModelConfig c = ::supra::testing::TinyConfig(48, 1, 3, 3, 8, 32, 16);  // F = 16, half = 8 (vector + tail)
  const std::vector<double> inv = RopeInverseFrequencies(c);
  const int64_t half = 8, heads = 3, n = 6;
  const std::vector<int64_t> positions = {0, 1, 17, 2047, kMaxPosition - 1, kMaxPosition};
  std::vector<float> cos(n * half), sin(n * half);
  ASSERT_TRUE(RopeAngles(positions, inv, cos.data(), sin.data()).ok());
  std::vector<float> x = Uniform(n * heads * 2 * half, 90);
  std::vector<float> ref = x;
  ApplyRope(MView(x, n, heads * 2 * half, heads * 2 * half), heads, half, cos.data(), sin.data(), 0.25f);
  RopeReference(ref, n, heads, half, positions, inv, 0.25);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], ref[i], 1e-6) << i;
}

TEST(RopeTest, AnglesNearTheLargestPositionKeepTheirPrecision) {
  const std::vector<double> inv = {1.0, 0.1, 1e-4};
  const std::vector<int64_t> positions = {kMaxPosition - 7, kMaxPosition};
  std::vector<float> cos(6), sin(6);
  ASSERT_TRUE(RopeAngles(positions, inv, cos.data(), sin.data()).ok());
  double float32_error = 0;
  for (int r = 0; r < 2; ++r) {
    for (int i = 0; i < 3; ++i) {
      const double theta = static_cast<double>(positions[r]) * inv[i];  // glibc reduces this exactly
      EXPECT_NEAR(cos[r * 3 + i], std::cos(theta), 1e-6);
      EXPECT_NEAR(sin[r * 3 + i], std::sin(theta), 1e-6);
      // What a float32 angle (the reference's tables) would give: far off.
      const float theta32 = static_cast<float>(positions[r]) * static_cast<float>(inv[i]);
      float32_error = std::max(float32_error, std::abs(std::cos(double{theta32}) - std::cos(theta)));
    }
  }
  EXPECT_GT(float32_error, 0.1);
}

TEST(RopeTest, PositionsOutOfRange) {
  const std::vector<double> inv = {1.0};
  float c, s;
  EXPECT_EQ(RopeAngles(std::vector<int64_t>{kMaxPosition + 1}, inv, &c, &s).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(RopeAngles(std::vector<int64_t>{-1}, inv, &c, &s).code(), absl::StatusCode::kInvalidArgument);
}

struct AttentionCase {
  AttentionShape shape;
  std::vector<float> gammas;
};

AttentionCase MakeAttentionCase(int64_t heads, int64_t key_heads, int64_t value_heads, int64_t f, int64_t dv) {
  AttentionCase c{AttentionShape{heads, key_heads, value_heads, f, dv}, {}};
  // Lightning-like gammas exp(-2^(-8(h+1)/H)) (0.43 on head 0 of 32), and no
  // decay at all on the last head.
  for (int64_t h = 0; h < heads; ++h) {
    c.gammas.push_back(h + 1 == heads ? 1.0f : static_cast<float>(std::exp(-std::exp2(-8.0 * (h + 1) / heads))));
  }
  return c;
}

// The token-by-token recurrence in float64 over `len` rows of one sequence.
void AttentionReference(const AttentionCase& c, const std::vector<float>& q, const std::vector<float>& k,
                        const std::vector<float>& v, int64_t row0, int64_t len, std::vector<double>& state,
                        std::vector<double>& out) {
  const AttentionShape& s = c.shape;
  const int64_t hf = s.heads * s.features, kf = s.key_heads * s.features, vd = s.value_heads * s.value_dim;
  for (int64_t t = row0; t < row0 + len; ++t) {
    for (int64_t h = 0; h < s.heads; ++h) {
      const float* qh = &q[t * hf + h * s.features];
      const float* kh = &k[t * kf + h / (s.heads / s.key_heads) * s.features];
      const float* vh = &v[t * vd + h / (s.heads / s.value_heads) * s.value_dim];
      double* p = &state[h * s.features * s.value_dim];
      for (int64_t d = 0; d < s.value_dim; ++d) {
        double o = 0;
        for (int64_t f = 0; f < s.features; ++f) {
          const double sv = p[f * s.value_dim + d] + double{kh[f]} * vh[d];
          o += qh[f] * sv;
          p[f * s.value_dim + d] = c.gammas[h] * sv;
        }
        out[(t * s.heads + h) * s.value_dim + d] = o;
      }
    }
  }
}

TEST(RecurrentAttentionTest, MatchesFloat64) {
  ThreadPool pool(2);
  const AttentionCase c = MakeAttentionCase(8, 2, 2, 6, 5);
  const AttentionShape& s = c.shape;
  const int64_t n = 3, hf = s.heads * s.features, kf = s.key_heads * s.features, vd = s.value_heads * s.value_dim;
  const int64_t layer = s.heads * s.features * s.value_dim;
  const std::vector<float> q = Uniform(n * hf, 100, 0, 1), k = Uniform(n * kf, 101, 0, 1), v = Uniform(n * vd, 102);
  std::vector<float> states = Uniform(n * layer, 103);
  std::vector<double> ref_states(states.begin(), states.end());
  std::vector<float*> ptrs = {states.data(), states.data() + layer, states.data() + 2 * layer};
  std::vector<float> out(n * s.heads * s.value_dim);
  RecurrentAttention(s, CView(q, n, hf, hf), CView(k, n, kf, kf), CView(v, n, vd, vd), c.gammas, ptrs,
                     MView(out, n, s.heads * s.value_dim, s.heads * s.value_dim), &pool);
  std::vector<double> ref_out(out.size());
  for (int64_t r = 0; r < n; ++r) {
    std::vector<double> st(ref_states.begin() + r * layer, ref_states.begin() + (r + 1) * layer);
    AttentionReference(c, q, k, v, r, 1, st, ref_out);
    std::copy(st.begin(), st.end(), ref_states.begin() + r * layer);
  }
  EXPECT_LE(RelMaxDiff(out, std::vector<float>(ref_out.begin(), ref_out.end())), 1e-6);
  EXPECT_LE(RelMaxDiff(states, std::vector<float>(ref_states.begin(), ref_states.end())), 1e-6);
}

// Chunks of several lengths (1, a partial tile, 256 with γ ≈ 0.43 on head 0
// and γ = 1 on the last head) against the float64 recurrence.
TEST(ChunkedAttentionTest, MatchesTheFloat64Recurrence) {
  ThreadPool pool(2);
  for (const AttentionCase& c :
       {MakeAttentionCase(4, 4, 4, 8, 8), MakeAttentionCase(6, 6, 3, 8, 12), MakeAttentionCase(32, 8, 8, 4, 4)}) {
    const AttentionShape& s = c.shape;
    const std::vector<int64_t> lengths = {1, 19, 256, 5};
    int64_t rows = 0;
    for (int64_t len : lengths) rows += len;
    const int64_t hf = s.heads * s.features, kf = s.key_heads * s.features, vd = s.value_heads * s.value_dim;
    const int64_t od = s.heads * s.value_dim, layer = s.heads * s.features * s.value_dim;
    // Keys scaled as the model does (rope'd features / sqrt(F)); positive
    // features as after the ReLU.
    const std::vector<float> q = Uniform(rows * hf, 110, 0, 1), v = Uniform(rows * vd, 112);
    std::vector<float> k = Uniform(rows * kf, 111, 0, 1);
    for (float& x : k) x /= std::sqrt(static_cast<float>(s.features));
    std::vector<float> states = Uniform(lengths.size() * layer, 113);
    std::vector<double> ref_states(states.begin(), states.end());
    std::vector<AttentionChunk> chunks;
    int64_t row = 0;
    for (size_t i = 0; i < lengths.size(); ++i) {
      chunks.push_back(AttentionChunk{row, lengths[i], states.data() + i * layer});
      row += lengths[i];
    }
    std::vector<float> out(rows * od);
    ChunkedAttention(s, CView(q, rows, hf, hf), CView(k, rows, kf, kf), CView(v, rows, vd, vd), c.gammas, chunks,
                     MView(out, rows, od, od), &pool);
    std::vector<double> ref_out(out.size());
    for (size_t i = 0; i < lengths.size(); ++i) {
      std::vector<double> st(ref_states.begin() + i * layer, ref_states.begin() + (i + 1) * layer);
      AttentionReference(c, q, k, v, chunks[i].row_begin, lengths[i], st, ref_out);
      std::copy(st.begin(), st.end(), ref_states.begin() + i * layer);
    }
    for (float x : out) ASSERT_TRUE(std::isfinite(x));
    EXPECT_LE(testing::WorstRowRelDiff(out, std::vector<float>(ref_out.begin(), ref_out.end()), od), 1e-5)
        << "H " << s.heads;
    EXPECT_LE(RelMaxDiff(states, std::vector<float>(ref_states.begin(), ref_states.end())), 1e-5) << "H " << s.heads;
  }
}

TEST(GroupNormTest, MatchesFloat64) {
  ThreadPool pool(2);
  const int64_t n = 9, heads = 5, group = 12, stride = heads * group + 2;
  std::vector<float> x = Uniform(n * stride, 120, 3.0f, 4.0f);  // a large mean over a small spread
  const std::vector<float> before = x;
  GroupNorm(MView(x, n, heads * group, stride), group, 1e-5, &pool);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* b = &before[r * stride + h * group];
      double mean = 0, var = 0;
      for (int64_t i = 0; i < group; ++i) mean += b[i];
      mean /= group;
      for (int64_t i = 0; i < group; ++i) var += (b[i] - mean) * (b[i] - mean);
      var /= group;
      for (int64_t i = 0; i < group; ++i) {
        EXPECT_NEAR(x[r * stride + h * group + i], (b[i] - mean) / std::sqrt(var + 1e-5), 2e-6);
      }
    }
    EXPECT_EQ(x[r * stride + heads * group], before[r * stride + heads * group]);  // padding untouched
  }
}

TEST(SwiGluTest, MatchesFloat64) {
  ThreadPool pool(2);
  const int64_t n = 4, ffn = 21;
  const std::vector<float> ab = Uniform(n * 2 * ffn, 130, -6.0f, 6.0f);
  std::vector<float> out(n * ffn);
  SwiGlu(CView(ab, n, 2 * ffn, 2 * ffn), MView(out, n, ffn, ffn), &pool);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < ffn; ++i) {
      const double a = ab[r * 2 * ffn + i], b = ab[r * 2 * ffn + ffn + i];
      EXPECT_NEAR(out[r * ffn + i], a / (1 + std::exp(-a)) * b, 1e-5);
    }
  }
  std::vector<float> extreme = {-1000.0f, 1000.0f, 2.0f, 3.0f};
  std::vector<float> y(2);
  SwiGlu(CView(extreme, 1, 4, 4), MView(y, 1, 2, 2), nullptr);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_FLOAT_EQ(y[1], 3000.0f);
}

TEST(FinalLogitsTest, MatchesFloat64) {
  ThreadPool pool(2);
  const int64_t n = 3, d = 24, vocab = 50;
  const std::vector<float> x = Uniform(n * d, 140, -2, 2), w = Uniform(d, 141, 0.8f, 1.2f);
  const std::vector<float> out_w = Uniform(vocab * d, 142);
  std::vector<float> normed(n * d), logits(n * vocab);
  FinalLogits(CView(x, n, d, d), w.data(), 1e-5, CView(out_w, vocab, d, d), MView(normed, n, d, d),
              MView(logits, n, vocab, vocab), &pool);
  std::vector<float> ref(n * vocab);
  for (int64_t r = 0; r < n; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += double{x[r * d + i]} * x[r * d + i];
    const double inv = 1 / std::sqrt(ss / d + 1e-5);
    for (int64_t o = 0; o < vocab; ++o) {
      double s = 0;
      for (int64_t i = 0; i < d; ++i) s += x[r * d + i] * inv * w[i] * out_w[o * d + i];
      ref[r * vocab + o] = static_cast<float>(s);
    }
  }
  EXPECT_LE(RelMaxDiff(logits, ref), 1e-6);
}

}  // namespace
}  // namespace supra::cpu

// Parity of the element-wise CUDA kernels (embedding, RMSNorm, feature map +
// qk norm + RoPE, SwiGLU) with the CPU reference ops, on fresh random inputs.
//
// Tolerances (relative to the largest reference value):
// - bf16 -> fp32 embedding: exact (every bf16 is a float).
// - bf16 outputs: 8e-3. Rounding to bf16 alone costs up to 2^-9 ≈ 2e-3 of a
//   value; the fp32 work before it differs from the CPU by an ulp or two.
// - fp32 outputs: 1e-5. The kernels repeat the CPU's operations one by one
//   (float64 sums of squares, float64 angles reduced modulo 2π); what differs
//   is the order of the float64 sums and RoPE's cos/sin, taken in float after
//   the reduction (within 4e-7 of the CPU's float64 ones). An angle formed or
//   reduced in float would miss by O(1) at the positions near 2^31 tested here.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/backend.h"
#include "engine/cpu/ops.h"
#include "engine/cuda/embedding.h"
#include "engine/cuda/feature_map_rope.h"
#include "engine/cuda/rms_norm.h"
#include "engine/cuda/swiglu.h"
#include "engine/cuda/w12_layout.h"
#include "gtest/gtest.h"
#include "tests/engine/cuda/cuda_test_util.h"
#include "tests/engine/testing/random_model.h"

namespace supra::cuda {
namespace {

using ::supra::cuda::testing::Download;
using ::supra::cuda::testing::DownloadBf16;
using ::supra::cuda::testing::PoisonedBuffer;
using ::supra::cuda::testing::RandomVector;
using ::supra::cuda::testing::RelativeMaxError;
using ::supra::cuda::testing::RoundToBf16;
using ::supra::cuda::testing::Upload;
using ::supra::cuda::testing::UploadBf16;

constexpr double kBf16Tolerance = 8e-3;
constexpr double kF32Tolerance = 1e-5;

// Every element of `got` outside the first `cols` columns of each row (the
// stride padding) must still hold the poison (NaN): the kernel wrote no more
// than it should.
bool PaddingUntouched(const std::vector<float>& got, int64_t rows, int64_t cols, int64_t stride) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = cols; c < stride; ++c) {
      if (!std::isnan(got[r * stride + c])) return false;
    }
  }
  return true;
}

// The first `cols` columns of each row of a strided matrix.
std::vector<float> Compact(const std::vector<float>& strided, int64_t rows, int64_t cols, int64_t stride) {
  std::vector<float> out(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = strided[r * stride + c];
  }
  return out;
}

// ---- Embedding -----------------------------------------------------------

struct EmbeddingCase {
  int64_t vocab, dim, n;
};

std::string EmbeddingName(const ::testing::TestParamInfo<EmbeddingCase>& info) {
  return absl::StrCat("V", info.param.vocab, "_D", info.param.dim, "_n", info.param.n);
}

class CudaEmbeddingTest : public ::testing::TestWithParam<EmbeddingCase> {};

TEST_P(CudaEmbeddingTest, MatchesCpu) {
  SUPRA_SKIP_WITHOUT_GPU();
  const EmbeddingCase c = GetParam();
  const std::vector<float> table = RoundToBf16(RandomVector(c.vocab * c.dim, 11));
  std::mt19937 rng(12);
  std::uniform_int_distribution<int32_t> token_dist(0, static_cast<int32_t>(c.vocab - 1));
  std::vector<int32_t> tokens(c.n);
  for (int32_t& t : tokens) t = token_dist(rng);
  tokens.front() = static_cast<int32_t>(c.vocab - 1);  // the last row of the table too

  std::vector<float> want(c.n * c.dim);
  cpu::EmbeddingGather(table.data(), c.dim, tokens, want.data());

  const auto table_d = UploadBf16(table);
  const auto tokens_d = Upload(tokens);
  auto out_d = PoisonedBuffer<float>(c.n * c.dim);
  ASSERT_TRUE(LaunchEmbeddingGather(table_d.data(), c.vocab, c.dim, tokens_d.data(), c.n, out_d.data(), nullptr).ok());
  EXPECT_EQ(RelativeMaxError(Download(out_d), want), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaEmbeddingTest,
                         ::testing::Values(EmbeddingCase{50, 48, 1}, EmbeddingCase{50, 48, 7},
                                           EmbeddingCase{37, 45, 5},  // odd width: scalar kernel
                                           EmbeddingCase{1000, 4096, 1}, EmbeddingCase{1000, 4096, 7},
                                           EmbeddingCase{1000, 4096, 64}, EmbeddingCase{1000, 4096, 300}),
                         EmbeddingName);

// A token that escaped validation reads nothing outside the table and shows
// up as NaN; the other rows are unaffected.
TEST(CudaEmbeddingTest, OutOfRangeTokenGivesNanRow) {
  SUPRA_SKIP_WITHOUT_GPU();
  constexpr int64_t kVocab = 20, kDim = 48;
  const std::vector<float> table = RoundToBf16(RandomVector(kVocab * kDim, 13));
  const std::vector<int32_t> tokens = {3, kVocab, -1, 7};
  const auto table_d = UploadBf16(table);
  const auto tokens_d = Upload(tokens);
  auto out_d = PoisonedBuffer<float>(tokens.size() * kDim);
  ASSERT_TRUE(LaunchEmbeddingGather(table_d.data(), kVocab, kDim, tokens_d.data(), 4, out_d.data(), nullptr).ok());
  const std::vector<float> got = Download(out_d);
  for (int64_t i = 0; i < kDim; ++i) {
    EXPECT_EQ(got[i], table[3 * kDim + i]);
    EXPECT_TRUE(std::isnan(got[kDim + i]));
    EXPECT_TRUE(std::isnan(got[2 * kDim + i]));
    EXPECT_EQ(got[3 * kDim + i], table[7 * kDim + i]);
  }
}

// Argument checks happen on the host, before any CUDA call.
TEST(CudaEmbeddingTest, RejectsBadArguments) {
  const int32_t* no_tokens = nullptr;
  float* no_out = nullptr;
  const __nv_bfloat16* no_table = nullptr;
  EXPECT_EQ(LaunchEmbeddingGather(no_table, 10, 8, no_tokens, 1, no_out, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchEmbeddingGather(no_table, 10, 0, no_tokens, 0, no_out, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchEmbeddingGather(no_table, 0, 8, no_tokens, 0, no_out, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchEmbeddingGather(no_table, 10, 8, no_tokens, -1, no_out, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(LaunchEmbeddingGather(no_table, 10, 8, no_tokens, 0, no_out, nullptr).ok());  // nothing to do
}

// ---- RMSNorm -------------------------------------------------------------

struct RmsNormCase {
  int64_t n, dim, pad;  // rows, width, extra stride of x and out beyond dim
};

std::string RmsNormName(const ::testing::TestParamInfo<RmsNormCase>& info) {
  return absl::StrCat("n", info.param.n, "_D", info.param.dim, "_pad", info.param.pad);
}

class CudaRmsNormTest : public ::testing::TestWithParam<RmsNormCase> {
 protected:
  static constexpr double kEps = 1e-5;
  int64_t stride() const { return GetParam().dim + GetParam().pad; }
  // Rows that are not centred (as the residual stream is not), in the padded layout.
  std::vector<float> X(uint32_t seed) const { return RandomVector(GetParam().n * stride(), seed, -1.0f, 3.0f); }
  std::vector<float> Weight() const { return RandomVector(GetParam().dim, 21, 0.8f, 1.2f); }
  // cpu::RmsNorm of the strided x, compacted to [n, dim].
  std::vector<float> Reference(const std::vector<float>& x, const std::vector<float>& weight) const {
    const RmsNormCase c = GetParam();
    std::vector<float> y(c.n * c.dim);
    cpu::RmsNorm(cpu::ConstMatrix{x.data(), c.n, c.dim, stride()}, weight.data(), kEps,
                 cpu::Matrix{y.data(), c.n, c.dim, c.dim}, nullptr);
    return y;
  }
};

TEST_P(CudaRmsNormTest, Bf16MatchesCpu) {
  SUPRA_SKIP_WITHOUT_GPU();
  const RmsNormCase c = GetParam();
  const std::vector<float> x = X(22), weight = Weight();
  const auto x_d = Upload(x);
  const auto weight_d = Upload(weight);
  auto out_d = PoisonedBuffer<__nv_bfloat16>(c.n * stride());
  ASSERT_TRUE(
      LaunchRmsNorm(x_d.data(), stride(), weight_d.data(), c.n, c.dim, kEps, out_d.data(), stride(), nullptr).ok());
  const std::vector<float> got = DownloadBf16(out_d);
  EXPECT_LE(RelativeMaxError(Compact(got, c.n, c.dim, stride()), Reference(x, weight)), kBf16Tolerance);
  EXPECT_TRUE(PaddingUntouched(got, c.n, c.dim, stride()));
  EXPECT_EQ(Download(x_d), x);  // the input is left alone
}

TEST_P(CudaRmsNormTest, AddThenNormMatchesCpu) {
  SUPRA_SKIP_WITHOUT_GPU();
  const RmsNormCase c = GetParam();
  const std::vector<float> x = X(23), delta = X(24), weight = Weight();
  std::vector<float> sum = x;
  for (size_t i = 0; i < sum.size(); ++i) sum[i] += delta[i];
  auto x_d = Upload(x);
  const auto delta_d = Upload(delta);
  const auto weight_d = Upload(weight);
  auto out_d = PoisonedBuffer<__nv_bfloat16>(c.n * stride());
  ASSERT_TRUE(LaunchAddRmsNorm(x_d.data(), stride(), delta_d.data(), stride(), weight_d.data(), c.n, c.dim, kEps,
                               out_d.data(), stride(), nullptr)
                  .ok());
  const std::vector<float> got = DownloadBf16(out_d);
  EXPECT_LE(RelativeMaxError(Compact(got, c.n, c.dim, stride()), Reference(sum, weight)), kBf16Tolerance);
  EXPECT_TRUE(PaddingUntouched(got, c.n, c.dim, stride()));
  // x + delta is one float addition, bit for bit; the padding of x is not touched.
  const std::vector<float> x_after = Download(x_d);
  EXPECT_EQ(Compact(x_after, c.n, c.dim, stride()), Compact(sum, c.n, c.dim, stride()));
  for (int64_t r = 0; r < c.n; ++r) {
    for (int64_t i = c.dim; i < stride(); ++i) EXPECT_EQ(x_after[r * stride() + i], x[r * stride() + i]);
  }
}

TEST_P(CudaRmsNormTest, AddWithoutDeltaIsPlainNorm) {
  SUPRA_SKIP_WITHOUT_GPU();
  const RmsNormCase c = GetParam();
  const std::vector<float> x = X(25), weight = Weight();
  auto x_d = Upload(x);
  const auto weight_d = Upload(weight);
  auto out_d = PoisonedBuffer<__nv_bfloat16>(c.n * stride());
  ASSERT_TRUE(LaunchAddRmsNorm(x_d.data(), stride(), nullptr, 0, weight_d.data(), c.n, c.dim, kEps, out_d.data(),
                               stride(), nullptr)
                  .ok());
  EXPECT_LE(RelativeMaxError(Compact(DownloadBf16(out_d), c.n, c.dim, stride()), Reference(x, weight)), kBf16Tolerance);
  EXPECT_EQ(Download(x_d), x);
}

TEST_P(CudaRmsNormTest, F32InPlaceMatchesCpu) {
  SUPRA_SKIP_WITHOUT_GPU();
  const RmsNormCase c = GetParam();
  const std::vector<float> x = X(26), weight = Weight();
  auto x_d = Upload(x);
  const auto weight_d = Upload(weight);
  ASSERT_TRUE(
      LaunchRmsNormF32(x_d.data(), stride(), weight_d.data(), c.n, c.dim, kEps, x_d.data(), stride(), nullptr).ok());
  const std::vector<float> got = Download(x_d);
  EXPECT_LE(RelativeMaxError(Compact(got, c.n, c.dim, stride()), Reference(x, weight)), kF32Tolerance);
  for (int64_t r = 0; r < c.n; ++r) {
    for (int64_t i = c.dim; i < stride(); ++i) EXPECT_EQ(got[r * stride() + i], x[r * stride() + i]);
  }
}

TEST_P(CudaRmsNormTest, F32OutOfPlaceMatchesCpu) {
  SUPRA_SKIP_WITHOUT_GPU();
  const RmsNormCase c = GetParam();
  const std::vector<float> x = X(27), weight = Weight();
  const auto x_d = Upload(x);
  const auto weight_d = Upload(weight);
  auto y_d = PoisonedBuffer<float>(c.n * stride());
  ASSERT_TRUE(
      LaunchRmsNormF32(x_d.data(), stride(), weight_d.data(), c.n, c.dim, kEps, y_d.data(), stride(), nullptr).ok());
  const std::vector<float> got = Download(y_d);
  EXPECT_LE(RelativeMaxError(Compact(got, c.n, c.dim, stride()), Reference(x, weight)), kF32Tolerance);
  EXPECT_TRUE(PaddingUntouched(got, c.n, c.dim, stride()));
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaRmsNormTest,
                         ::testing::Values(RmsNormCase{1, 48, 0}, RmsNormCase{7, 48, 0},
                                           RmsNormCase{3, 47, 0},  // odd width: scalar kernel
                                           RmsNormCase{5, 48, 4},  // strided rows, vector kernel
                                           RmsNormCase{5, 48, 3},  // misaligned strided rows: scalar kernel
                                           RmsNormCase{1, 4096, 0}, RmsNormCase{7, 4096, 0}, RmsNormCase{64, 4096, 0},
                                           RmsNormCase{300, 4096, 0},  // many rows: 256-thread blocks
                                           RmsNormCase{3, 6144, 0},
                                           RmsNormCase{300, 6144, 0},  // 2 float4 per thread; 4 with many rows
                                           RmsNormCase{2, 14336, 0},   // 4 float4 per thread
                                           RmsNormCase{2, 20000, 0}),  // wider than the register path: scalar
                         RmsNormName);

TEST(CudaRmsNormTest, RejectsBadArguments) {
  float* no_x = nullptr;
  __nv_bfloat16* no_out = nullptr;
  const float* no_weight = nullptr;
  EXPECT_EQ(LaunchRmsNorm(no_x, 8, no_weight, 1, 8, 1e-5, no_out, 8, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchRmsNorm(no_x, 4, no_weight, 0, 8, 1e-5, no_out, 8, nullptr).code(),
            absl::StatusCode::kInvalidArgument);  // stride below the width
  EXPECT_EQ(LaunchRmsNorm(no_x, 8, no_weight, 0, 0, 1e-5, no_out, 8, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchRmsNorm(no_x, 8, no_weight, 0, 8, -1.0, no_out, 8, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  float buffer[16] = {};  // never read: these calls fail (or have no rows) before any launch
  EXPECT_EQ(LaunchAddRmsNorm(buffer, 8, buffer, 4, buffer, 0, 8, 1e-5, no_out, 8, nullptr).code(),
            absl::StatusCode::kInvalidArgument);  // delta stride below the width
  EXPECT_EQ(LaunchRmsNormF32(buffer, 8, buffer, 1, 8, 1e-5, buffer, 12, nullptr).code(),
            absl::StatusCode::kInvalidArgument);                                        // in place with another stride
  EXPECT_TRUE(LaunchRmsNorm(no_x, 8, no_weight, 0, 8, 1e-5, no_out, 8, nullptr).ok());  // nothing to do
}

// ---- Feature map + qk norm + RoPE ---------------------------------------

struct FeatureMapRopeCase {
  int64_t n;
  int heads, kv_heads, features;
  bool qk_norm;
  int64_t first_position;  // positions are first_position + [0, position_spread)
  int64_t position_spread;
  bool in_place;  // fq over fq_pre (and fk over fk_pre without qk norm)
};

std::string FeatureMapRopeName(const ::testing::TestParamInfo<FeatureMapRopeCase>& info) {
  const FeatureMapRopeCase& c = info.param;
  return absl::StrCat("n", c.n, "_H", c.heads, "_Hkv", c.kv_heads, "_F", c.features, c.qk_norm ? "_qknorm" : "", "_p",
                      c.first_position, c.in_place ? "_inplace" : "");
}

class CudaFeatureMapRopeTest : public ::testing::TestWithParam<FeatureMapRopeCase> {};

TEST_P(CudaFeatureMapRopeTest, MatchesCpu) {
  SUPRA_SKIP_WITHOUT_GPU();
  const FeatureMapRopeCase c = GetParam();
  constexpr double kEps = 1e-5;
  const int64_t hf = int64_t{c.heads} * c.features, kvf = int64_t{c.kv_heads} * c.features;
  const int key_heads = c.qk_norm ? c.heads : c.kv_heads;
  const int64_t kf = int64_t{key_heads} * c.features, half = c.features / 2;
  const ModelConfig config =
      supra::testing::TinyConfig(static_cast<int>(hf), 1, c.heads, c.kv_heads, c.features, 16, 32);
  ASSERT_EQ(config.head_dim(), c.features);
  const std::vector<double> inv_freq = cpu::RopeInverseFrequencies(config);

  // Projections centred near zero so that ReLU cuts about half of them.
  const std::vector<float> fq_pre = RandomVector(c.n * hf, 31), fk_pre = RandomVector(c.n * kvf, 32);
  const std::vector<float> bq = RandomVector(hf, 33, -0.1f, 0.1f), bk = RandomVector(kvf, 34, -0.1f, 0.1f);
  const std::vector<float> q_norm = RandomVector(hf, 35, 0.8f, 1.2f), k_norm = RandomVector(hf, 36, 0.8f, 1.2f);
  std::mt19937 rng(37);
  std::uniform_int_distribution<int64_t> offset(0, c.position_spread - 1);
  std::vector<int64_t> positions(c.n);
  for (int64_t& p : positions) p = std::min(c.first_position + offset(rng), kMaxPosition);
  positions.back() = std::min(c.first_position + c.position_spread - 1, kMaxPosition);

  // The CPU model's sequence of ops.
  std::vector<float> want_q = fq_pre, want_fk = fk_pre, want_k_expanded(c.n * hf);
  const cpu::Matrix q{want_q.data(), c.n, hf, hf}, fk{want_fk.data(), c.n, kvf, kvf};
  cpu::FeatureMap(q, bq.data());
  cpu::FeatureMap(fk, bk.data());
  cpu::Matrix keys = fk;
  if (c.qk_norm) {
    keys = cpu::Matrix{want_k_expanded.data(), c.n, hf, hf};
    cpu::QkNorm(q, q_norm.data(), cpu::ConstMatrix{fk.data, fk.rows, fk.cols, fk.stride}, k_norm.data(), c.heads,
                c.kv_heads, kEps, keys, nullptr);
  }
  std::vector<float> cos(c.n * half), sin(c.n * half);
  ASSERT_TRUE(cpu::RopeAngles(positions, inv_freq, cos.data(), sin.data()).ok());
  const float key_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.features)));
  cpu::ApplyRope(q, c.heads, half, cos.data(), sin.data(), 1.0f);
  cpu::ApplyRope(keys, key_heads, half, cos.data(), sin.data(), key_scale);
  const std::vector<float> want_k(keys.data, keys.data + c.n * kf);

  auto fq_pre_d = Upload(fq_pre);
  auto fk_pre_d = Upload(fk_pre);
  const auto bq_d = Upload(bq), bk_d = Upload(bk), q_norm_d = Upload(q_norm), k_norm_d = Upload(k_norm);
  const auto positions_d = Upload(positions);
  const auto inv_freq_d = Upload(inv_freq);
  auto fq_d = PoisonedBuffer<float>(c.n * hf);
  auto fk_d = PoisonedBuffer<float>(c.n * kf);
  float* fq_out = c.in_place ? fq_pre_d.data() : fq_d.data();
  float* fk_out = c.in_place && !c.qk_norm ? fk_pre_d.data() : fk_d.data();
  ASSERT_TRUE(LaunchFeatureMapRope(FeatureMapRopeShape{c.heads, c.kv_heads, c.features}, fq_pre_d.data(), bq_d.data(),
                                   fk_pre_d.data(), bk_d.data(), positions_d.data(), inv_freq_d.data(),
                                   c.qk_norm ? q_norm_d.data() : nullptr, c.qk_norm ? k_norm_d.data() : nullptr, kEps,
                                   c.n, fq_out, fk_out, nullptr)
                  .ok());
  const std::vector<float> got_q = Download(fq_out == fq_d.data() ? fq_d : fq_pre_d);
  const std::vector<float> got_k = Download(fk_out == fk_d.data() ? fk_d : fk_pre_d);
  EXPECT_LE(RelativeMaxError(got_q, want_q), kF32Tolerance);
  EXPECT_LE(RelativeMaxError(got_k, want_k), kF32Tolerance);
}

constexpr int64_t kNearMax = kMaxPosition - 647;  // 2147483000

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaFeatureMapRopeTest,
    ::testing::Values(
        // Tiny odd shapes, GQA with and without qk norm.
        FeatureMapRopeCase{1, 6, 3, 8, false, 0, 1000, false}, FeatureMapRopeCase{7, 6, 3, 8, false, 0, 1000, false},
        FeatureMapRopeCase{1, 6, 3, 8, true, 0, 1000, false}, FeatureMapRopeCase{7, 6, 3, 8, true, 0, 1000, false},
        // Odd half (F/2 = 3): the scalar kernel.
        FeatureMapRopeCase{5, 4, 2, 6, false, 0, 1000, false}, FeatureMapRopeCase{5, 4, 2, 6, true, 0, 1000, false},
        // Shared query/key heads (Hkv == H).
        FeatureMapRopeCase{3, 4, 4, 16, true, 0, 1000, false}, FeatureMapRopeCase{3, 4, 4, 16, false, 0, 1000, false},
        // Mistral-SUPRA: H=32, Hkv=8, F=128.
        FeatureMapRopeCase{1, 32, 8, 128, false, 0, 100000, false},
        FeatureMapRopeCase{7, 32, 8, 128, false, 0, 100000, false},
        FeatureMapRopeCase{64, 32, 8, 128, false, 0, 100000, false},
        FeatureMapRopeCase{300, 32, 8, 128, false, 0, 100000, false},
        FeatureMapRopeCase{1, 32, 8, 128, true, 0, 100000, false},
        FeatureMapRopeCase{7, 32, 8, 128, true, 0, 100000, false},
        FeatureMapRopeCase{64, 32, 8, 128, true, 0, 100000, false},
        FeatureMapRopeCase{300, 32, 8, 128, true, 0, 100000, false},
        // Positions up to 2^31 − 1: the float64 angle reduction.
        FeatureMapRopeCase{64, 32, 8, 128, false, kNearMax, 648, false},
        FeatureMapRopeCase{64, 32, 8, 128, true, kNearMax, 648, false},
        FeatureMapRopeCase{7, 6, 3, 8, false, kNearMax, 648, false},
        // Rows wider than one block's threads (more than 1024 units of four
        // pairs, or of one pair with odd F/2): split rows whose qk norm sums
        // read the row again, and blocks that loop over their units.
        FeatureMapRopeCase{7, 32, 8, 256, true, 0, 100000, false},
        FeatureMapRopeCase{300, 32, 8, 256, true, 0, 100000, false},
        FeatureMapRopeCase{3, 32, 8, 130, true, 0, 100000, false},
        FeatureMapRopeCase{3, 32, 8, 130, false, 0, 100000, false},
        FeatureMapRopeCase{7, 32, 8, 256, true, 0, 100000, true},
        // In place over the projections.
        FeatureMapRopeCase{7, 32, 8, 128, false, 0, 100000, true},
        FeatureMapRopeCase{7, 32, 8, 128, true, 0, 100000, true},
        FeatureMapRopeCase{300, 32, 8, 128, false, 0, 100000, true}),
    FeatureMapRopeName);

TEST(CudaFeatureMapRopeTest, RejectsBadArguments) {
  const float* no_f = nullptr;
  float* no_out = nullptr;
  const int64_t* no_positions = nullptr;
  const double* no_freq = nullptr;
  const float weight[4] = {};
  auto launch = [&](FeatureMapRopeShape shape, const float* q_norm, const float* k_norm, int64_t n) {
    return LaunchFeatureMapRope(shape, no_f, no_f, no_f, no_f, no_positions, no_freq, q_norm, k_norm, 1e-5, n, no_out,
                                no_out, nullptr)
        .code();
  };
  EXPECT_EQ(launch({4, 2, 8}, nullptr, nullptr, 1), absl::StatusCode::kInvalidArgument);  // null buffers
  EXPECT_EQ(launch({4, 3, 8}, nullptr, nullptr, 0), absl::StatusCode::kInvalidArgument);  // H % Hkv != 0
  EXPECT_EQ(launch({4, 2, 7}, nullptr, nullptr, 0), absl::StatusCode::kInvalidArgument);  // odd F
  EXPECT_EQ(launch({0, 1, 8}, nullptr, nullptr, 0), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(launch({4, 2, 8}, weight, nullptr, 0), absl::StatusCode::kInvalidArgument);  // a lone norm weight
  EXPECT_EQ(launch({4, 2, 8}, nullptr, nullptr, -1), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(launch({4, 2, 8}, nullptr, nullptr, 0), absl::StatusCode::kOk);  // nothing to do
}

// ---- SwiGLU --------------------------------------------------------------

struct SwiGluCase {
  int64_t n, ffn;
};

std::string SwiGluName(const ::testing::TestParamInfo<SwiGluCase>& info) {
  return absl::StrCat("n", info.param.n, "_FFN", info.param.ffn);
}

class CudaSwiGluTest : public ::testing::TestWithParam<SwiGluCase> {};

TEST_P(CudaSwiGluTest, MatchesCpu) {
  SUPRA_SKIP_WITHOUT_GPU();
  const SwiGluCase c = GetParam();
  // a spans silu's curved part and both tails; b is the gate's other factor.
  std::vector<float> ab = RandomVector(c.n * 2 * c.ffn, 41, -2.0f, 2.0f);
  const std::vector<float> a = RandomVector(c.n * c.ffn, 42, -8.0f, 8.0f);
  for (int64_t r = 0; r < c.n; ++r) {
    for (int64_t i = 0; i < c.ffn; ++i) ab[r * 2 * c.ffn + i] = a[r * c.ffn + i];
  }
  // Far tails: e^−a overflows to inf (silu → −0) or vanishes (silu → a).
  ab[0] = -1000.0f;
  if (c.ffn > 1) ab[1] = 200.0f;
  ab = RoundToBf16(ab);

  std::vector<float> want(c.n * c.ffn);
  cpu::SwiGlu(cpu::ConstMatrix{ab.data(), c.n, 2 * c.ffn, 2 * c.ffn}, cpu::Matrix{want.data(), c.n, c.ffn, c.ffn},
              nullptr);
  // The device reads ab with its columns in w12's interleaved order.
  std::vector<float> interleaved(ab.size());
  for (int64_t r = 0; r < c.n; ++r) {
    for (int64_t col = 0; col < 2 * c.ffn; ++col) {
      interleaved[r * 2 * c.ffn + col] = ab[r * 2 * c.ffn + CheckpointW12Row(col, c.ffn)];
    }
  }
  const auto ab_d = UploadBf16(interleaved);
  auto out_d = PoisonedBuffer<__nv_bfloat16>(c.n * c.ffn);
  ASSERT_TRUE(LaunchSwiGlu(ab_d.data(), c.n, c.ffn, out_d.data(), nullptr).ok());
  EXPECT_LE(RelativeMaxError(DownloadBf16(out_d), want), kBf16Tolerance);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaSwiGluTest,
                         ::testing::Values(SwiGluCase{1, 40}, SwiGluCase{7, 40},
                                           SwiGluCase{3, 37},  // odd width: scalar kernel, a last group of 5
                                           SwiGluCase{2, 3},   // a single partial group
                                           SwiGluCase{1, 14336}, SwiGluCase{7, 14336}, SwiGluCase{64, 14336},
                                           SwiGluCase{300, 14336}),
                         SwiGluName);

TEST(CudaSwiGluTest, RejectsBadArguments) {
  const __nv_bfloat16* no_ab = nullptr;
  __nv_bfloat16* no_out = nullptr;
  EXPECT_EQ(LaunchSwiGlu(no_ab, 1, 8, no_out, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchSwiGlu(no_ab, 0, 0, no_out, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchSwiGlu(no_ab, -1, 8, no_out, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(LaunchSwiGlu(no_ab, 0, 8, no_out, nullptr).ok());
}

}  // namespace
}  // namespace supra::cuda

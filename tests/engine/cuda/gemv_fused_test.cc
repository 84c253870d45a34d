// The fused GEMV launches against the CPU ops they replace, run in sequence:
//  - LaunchGemvPair (the feature-map projections of q and k in one grid)
//    against two cpu::Linear calls, and bit for bit against two LaunchGemv
//    launches at the Mistral-SUPRA shapes (the same k split);
//  - LaunchGemvSwiGlu over the interleaved w12 (w12_layout.h) against
//    cpu::Linear over the checkpoint's [W1; W2], rounded to bf16 as the
//    device's ab is, then cpu::SwiGlu; and bit for bit against LaunchGemv
//    into an interleaved ab followed by LaunchSwiGlu (the cuBLAS path's
//    activation kernel);
//  - the w12 row maps themselves (host only: runs without a GPU).
// Inputs are bf16-rounded random values, never zeros; n covers 1, 2, 3, 8
// (and 16, the GEMV's largest batch).
//
// Tolerances (max |got − want| / max |want|), as in gemv_test.cc:
//  - fp32 y: 1e-5 (same bf16 products, fp32 sums in another order);
//  - bf16 out of SwiGLU: 8e-3. a and b are rounded to bf16 on both sides,
//    but a sum that lands near a rounding boundary may round to the
//    neighbouring bf16 on one side only (2^-8 relative), which silu·b
//    carries into the result, plus the final rounding.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/cpu/ops.h"
#include "engine/cuda/gemv.h"
#include "engine/cuda/swiglu.h"
#include "engine/cuda/w12_layout.h"
#include "engine/util/thread_pool.h"
#include "gtest/gtest.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace supra::cuda {
namespace {

using testing::Download;
using testing::DownloadBf16;
using testing::PoisonedBuffer;
using testing::RandomVector;
using testing::RelativeMaxError;
using testing::RoundToBf16;
using testing::Upload;
using testing::UploadBf16;

constexpr double kF32Tolerance = 1e-5;
constexpr double kBf16Tolerance = 8e-3;
constexpr int64_t kBatchSizes[] = {1, 2, 3, 8, 16};

ThreadPool& Pool() {
  static ThreadPool pool(0);
  return pool;
}

// ---- The w12 layout (host only) --------------------------------------------

// Every checkpoint row lands on exactly one interleaved row and comes back;
// a_j and b_j share the 16-row tile 16·(j / 8).
TEST(W12LayoutTest, InterleavingIsABijectionThatPairsEachRowWithItsGate) {
  for (const int64_t ffn : {int64_t{1}, int64_t{3}, int64_t{8}, int64_t{37}, int64_t{96}, int64_t{14336}}) {
    std::vector<int> hits(2 * ffn, 0);
    for (int64_t j = 0; j < ffn; ++j) {
      const int64_t a = InterleavedW12Row(j, false, ffn), b = InterleavedW12Row(j, true, ffn);
      ASSERT_GE(a, 0);
      ASSERT_LT(b, 2 * ffn);
      EXPECT_EQ(a / 16, j / 8) << "ffn=" << ffn << " j=" << j;
      EXPECT_EQ(b / 16, j / 8) << "ffn=" << ffn << " j=" << j;
      EXPECT_EQ(CheckpointW12Row(a, ffn), j) << "ffn=" << ffn;
      EXPECT_EQ(CheckpointW12Row(b, ffn), ffn + j) << "ffn=" << ffn;
      ++hits[a];
      ++hits[b];
    }
    for (int64_t r = 0; r < 2 * ffn; ++r) EXPECT_EQ(hits[r], 1) << "ffn=" << ffn << " row " << r;
  }
  // A full group: W1 rows 8..15, then W2 rows 8..15.
  EXPECT_EQ(CheckpointW12Row(16, 96), 8);
  EXPECT_EQ(CheckpointW12Row(24, 96), 96 + 8);
  // The last group of ffn = 37 holds 5 rows of each.
  EXPECT_EQ(CheckpointW12Row(64 + 4, 37), 36);
  EXPECT_EQ(CheckpointW12Row(64 + 5, 37), 37 + 32);
}

// ---- LaunchGemvPair -------------------------------------------------------------

struct PairShape {
  int64_t in_q, out_q, in_k, out_k;
};

// x is one [16, in_q + in_k (+ 16)] matrix whose column slices are the two
// inputs, as qkv is in the decoder.
TEST(CudaGemvPairTest, MatchesTwoLinearsAndTwoLaunches) {
  SUPRA_SKIP_WITHOUT_GPU();
  const PairShape shapes[] = {
      {4096, 4096, 1024, 1024},  // Mistral-SUPRA: embed_q and embed_kv
      {64, 64, 32, 32},          // tiny GQA
      {64, 64, 64, 64},          // shared feature map (H == Hkv)
      {100, 37, 24, 17},         // in % 8 != 0: the scalar path
      {1024, 4104, 256, 8},      // ragged tiles
  };
  uint32_t seed = 2000;
  for (const PairShape& s : shapes) {
    SCOPED_TRACE(absl::StrCat("q ", s.out_q, "x", s.in_q, ", k ", s.out_k, "x", s.in_k));
    const int64_t x_stride = s.in_q + s.in_k + 16;
    const std::vector<float> x = RoundToBf16(RandomVector(16 * x_stride, seed += 10));
    const std::vector<float> wq = RoundToBf16(RandomVector(s.out_q * s.in_q, seed + 1));
    const std::vector<float> wk = RoundToBf16(RandomVector(s.out_k * s.in_k, seed + 2));
    const std::vector<float> bq = RandomVector(s.out_q, seed + 3), bk = RandomVector(s.out_k, seed + 4);
    std::vector<float> want_q(16 * s.out_q), want_k(16 * s.out_k);
    cpu::Linear(cpu::ConstMatrix{x.data(), 16, s.in_q, x_stride}, cpu::ConstMatrix{wq.data(), s.out_q, s.in_q, s.in_q},
                bq.data(), cpu::Matrix{want_q.data(), 16, s.out_q, s.out_q}, false, &Pool());
    cpu::Linear(cpu::ConstMatrix{x.data() + s.in_q, 16, s.in_k, x_stride},
                cpu::ConstMatrix{wk.data(), s.out_k, s.in_k, s.in_k}, bk.data(),
                cpu::Matrix{want_k.data(), 16, s.out_k, s.out_k}, false, &Pool());

    const auto x_d = UploadBf16(x), wq_d = UploadBf16(wq), wk_d = UploadBf16(wk);
    const auto bq_d = Upload(bq), bk_d = Upload(bk);
    for (const int64_t n : kBatchSizes) {
      auto yq = PoisonedBuffer<float>(n * s.out_q), yk = PoisonedBuffer<float>(n * s.out_k);
      const GemvProblem q{x_d.data(), x_stride, wq_d.data(), bq_d.data(), yq.data(), s.out_q, s.in_q, s.out_q};
      const GemvProblem k{x_d.data() + s.in_q, x_stride, wk_d.data(), bk_d.data(), yk.data(), s.out_k, s.in_k, s.out_k};
      ASSERT_TRUE(LaunchGemvPair(q, k, /*y_is_bf16=*/false, n, /*accumulate=*/false, nullptr).ok());
      const std::vector<float> got_q = Download(yq), got_k = Download(yk);
      EXPECT_LE(RelativeMaxError(got_q, std::vector<float>(want_q.begin(), want_q.begin() + n * s.out_q)),
                kF32Tolerance)
          << "q, n=" << n;
      EXPECT_LE(RelativeMaxError(got_k, std::vector<float>(want_k.begin(), want_k.begin() + n * s.out_k)),
                kF32Tolerance)
          << "k, n=" << n;
      if (s.out_q == 4096 && s.out_k == 1024) {
        // Mistral-SUPRA: the pair takes the split each projection gets alone.
        auto alone_q = PoisonedBuffer<float>(n * s.out_q), alone_k = PoisonedBuffer<float>(n * s.out_k);
        ASSERT_TRUE(
            LaunchGemv(q.x, x_stride, q.w, q.bias, alone_q.data(), s.out_q, false, n, s.in_q, s.out_q, false, nullptr)
                .ok());
        ASSERT_TRUE(
            LaunchGemv(k.x, x_stride, k.w, k.bias, alone_k.data(), s.out_k, false, n, s.in_k, s.out_k, false, nullptr)
                .ok());
        const std::vector<float> want_alone_q = Download(alone_q), want_alone_k = Download(alone_k);
        EXPECT_EQ(std::memcmp(got_q.data(), want_alone_q.data(), got_q.size() * sizeof(float)), 0) << "n=" << n;
        EXPECT_EQ(std::memcmp(got_k.data(), want_alone_k.data(), got_k.size() * sizeof(float)), 0) << "n=" << n;
      }
    }
  }
}

// Accumulate mode and bf16 outputs go through the same grouped grid.
TEST(CudaGemvPairTest, AccumulatesAndWritesBf16) {
  SUPRA_SKIP_WITHOUT_GPU();
  constexpr int64_t kIn = 512, kOutA = 300, kOutB = 200;
  const std::vector<float> x = RoundToBf16(RandomVector(16 * kIn, 2100));
  const std::vector<float> wa = RoundToBf16(RandomVector(kOutA * kIn, 2101));
  const std::vector<float> wb = RoundToBf16(RandomVector(kOutB * kIn, 2102));
  const std::vector<float> ya0 = RandomVector(16 * kOutA, 2103, -4.0f, 4.0f);
  const std::vector<float> yb0 = RandomVector(16 * kOutB, 2104, -4.0f, 4.0f);
  const auto x_d = UploadBf16(x), wa_d = UploadBf16(wa), wb_d = UploadBf16(wb);
  for (const int64_t n : kBatchSizes) {
    // fp32, accumulate.
    std::vector<float> want_a(ya0.begin(), ya0.begin() + n * kOutA), want_b(yb0.begin(), yb0.begin() + n * kOutB);
    cpu::Linear(cpu::ConstMatrix{x.data(), n, kIn, kIn}, cpu::ConstMatrix{wa.data(), kOutA, kIn, kIn}, nullptr,
                cpu::Matrix{want_a.data(), n, kOutA, kOutA}, true, &Pool());
    cpu::Linear(cpu::ConstMatrix{x.data(), n, kIn, kIn}, cpu::ConstMatrix{wb.data(), kOutB, kIn, kIn}, nullptr,
                cpu::Matrix{want_b.data(), n, kOutB, kOutB}, true, &Pool());
    auto ya = Upload(std::vector<float>(ya0.begin(), ya0.begin() + n * kOutA));
    auto yb = Upload(std::vector<float>(yb0.begin(), yb0.begin() + n * kOutB));
    ASSERT_TRUE(LaunchGemvPair({x_d.data(), kIn, wa_d.data(), nullptr, ya.data(), kOutA, kIn, kOutA},
                               {x_d.data(), kIn, wb_d.data(), nullptr, yb.data(), kOutB, kIn, kOutB}, false, n, true,
                               nullptr)
                    .ok());
    EXPECT_LE(RelativeMaxError(Download(ya), want_a), kF32Tolerance) << "accumulate, n=" << n;
    EXPECT_LE(RelativeMaxError(Download(yb), want_b), kF32Tolerance) << "accumulate, n=" << n;

    // bf16, overwrite.
    std::vector<float> want16_a(n * kOutA), want16_b(n * kOutB);
    cpu::Linear(cpu::ConstMatrix{x.data(), n, kIn, kIn}, cpu::ConstMatrix{wa.data(), kOutA, kIn, kIn}, nullptr,
                cpu::Matrix{want16_a.data(), n, kOutA, kOutA}, false, &Pool());
    cpu::Linear(cpu::ConstMatrix{x.data(), n, kIn, kIn}, cpu::ConstMatrix{wb.data(), kOutB, kIn, kIn}, nullptr,
                cpu::Matrix{want16_b.data(), n, kOutB, kOutB}, false, &Pool());
    auto ya16 = PoisonedBuffer<__nv_bfloat16>(n * kOutA), yb16 = PoisonedBuffer<__nv_bfloat16>(n * kOutB);
    ASSERT_TRUE(LaunchGemvPair({x_d.data(), kIn, wa_d.data(), nullptr, ya16.data(), kOutA, kIn, kOutA},
                               {x_d.data(), kIn, wb_d.data(), nullptr, yb16.data(), kOutB, kIn, kOutB}, true, n, false,
                               nullptr)
                    .ok());
    EXPECT_LE(RelativeMaxError(DownloadBf16(ya16), want16_a), kBf16Tolerance) << "bf16, n=" << n;
    EXPECT_LE(RelativeMaxError(DownloadBf16(yb16), want16_b), kBf16Tolerance) << "bf16, n=" << n;
  }
}

// ---- LaunchGemvSwiGlu ------------------------------------------------------------

struct SwiGluShape {
  int64_t in, ffn;
};

std::string Describe(const SwiGluShape& s, int64_t n) { return absl::StrCat("in=", s.in, " ffn=", s.ffn, " n=", n); }

// The checkpoint's w12 rows in the device's interleaved order.
std::vector<float> Interleave(const std::vector<float>& w12, int64_t ffn, int64_t in) {
  std::vector<float> out(w12.size());
  for (int64_t r = 0; r < 2 * ffn; ++r) {
    const int64_t source = CheckpointW12Row(r, ffn);
    std::copy(w12.begin() + source * in, w12.begin() + (source + 1) * in, out.begin() + r * in);
  }
  return out;
}

TEST(CudaGemvSwiGluTest, MatchesLinearThenSwiGluAndTheUnfusedKernels) {
  SUPRA_SKIP_WITHOUT_GPU();
  const SwiGluShape shapes[] = {
      {4096, 14336},            // Mistral-SUPRA
      {64, 96},                 // the backend tests' tiny models
      {1024, 256},   {40, 37},  // a last group of 5 rows of each half
      {100, 24},                // in % 8 != 0: the scalar path
      {64, 3},                  // a single partial group
  };
  uint32_t seed = 3000;
  for (const SwiGluShape& s : shapes) {
    const std::vector<float> x = RoundToBf16(RandomVector(16 * s.in, seed += 10));
    // Weights scaled so that a spans silu's curved part and both tails.
    const float scale = 4.0f / std::sqrt(static_cast<float>(s.in));
    const std::vector<float> w12 = RoundToBf16(RandomVector(2 * s.ffn * s.in, seed + 1, -scale, scale));

    // The CPU sequence: ab = x · w12ᵀ, rounded to bf16 as the device stores a
    // bf16 projection, then SwiGLU.
    std::vector<float> ab(16 * 2 * s.ffn), want(16 * s.ffn);
    cpu::Linear(cpu::ConstMatrix{x.data(), 16, s.in, s.in}, cpu::ConstMatrix{w12.data(), 2 * s.ffn, s.in, s.in},
                nullptr, cpu::Matrix{ab.data(), 16, 2 * s.ffn, 2 * s.ffn}, false, &Pool());
    ab = RoundToBf16(ab);
    cpu::SwiGlu(cpu::ConstMatrix{ab.data(), 16, 2 * s.ffn, 2 * s.ffn}, cpu::Matrix{want.data(), 16, s.ffn, s.ffn},
                &Pool());

    const auto x_d = UploadBf16(x);
    const auto w12_d = UploadBf16(Interleave(w12, s.ffn, s.in));
    for (const int64_t n : kBatchSizes) {
      // Output rows padded by 8 to check the stride and that nothing past ffn is written.
      const int64_t out_stride = s.ffn + 8;
      auto out = PoisonedBuffer<__nv_bfloat16>(n * out_stride);
      ASSERT_TRUE(
          LaunchGemvSwiGlu(x_d.data(), s.in, w12_d.data(), out.data(), out_stride, n, s.in, s.ffn, nullptr).ok())
          << Describe(s, n);
      const std::vector<float> got_strided = DownloadBf16(out);
      std::vector<float> got(n * s.ffn);
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t j = 0; j < s.ffn; ++j) got[r * s.ffn + j] = got_strided[r * out_stride + j];
        for (int64_t j = s.ffn; j < out_stride; ++j) {
          EXPECT_TRUE(std::isnan(got_strided[r * out_stride + j])) << Describe(s, n) << " padding written";
        }
      }
      EXPECT_LE(RelativeMaxError(got, std::vector<float>(want.begin(), want.begin() + n * s.ffn)), kBf16Tolerance)
          << Describe(s, n);

      // The unfused pair over the same layout: GEMV into a bf16 ab, then
      // the SwiGLU kernel. Bit-identical.
      auto ab_d = PoisonedBuffer<__nv_bfloat16>(n * 2 * s.ffn);
      auto unfused = PoisonedBuffer<__nv_bfloat16>(n * s.ffn);
      ASSERT_TRUE(LaunchGemv(x_d.data(), s.in, w12_d.data(), nullptr, ab_d.data(), 2 * s.ffn, true, n, s.in, 2 * s.ffn,
                             false, nullptr)
                      .ok());
      ASSERT_TRUE(LaunchSwiGlu(ab_d.data(), n, s.ffn, unfused.data(), nullptr).ok());
      const std::vector<float> want_unfused = DownloadBf16(unfused);
      EXPECT_EQ(std::memcmp(got.data(), want_unfused.data(), got.size() * sizeof(float)), 0) << Describe(s, n);
    }
  }
}

// The fused launch keeps stream order with programmatic launch in a chain
// that reads its output at once (as w3 does), on a created stream and under
// stream capture into a CUDA graph (the decoder's setting).
TEST(CudaGemvSwiGluTest, ChainKeepsStreamOrderInAGraph) {
  SUPRA_SKIP_WITHOUT_GPU();
  constexpr int64_t kIn = 1024, kFfn = 2048, kOut = 1024;
  const std::vector<float> x = RoundToBf16(RandomVector(8 * kIn, 3100));
  const std::vector<float> w12 = RoundToBf16(RandomVector(2 * kFfn * kIn, 3101, -0.1f, 0.1f));
  const std::vector<float> w3 = RoundToBf16(RandomVector(kOut * kFfn, 3102));
  const std::vector<float> y0 = RandomVector(8 * kOut, 3103);
  std::vector<float> ab(8 * 2 * kFfn), s(8 * kFfn), want = y0;
  cpu::Linear(cpu::ConstMatrix{x.data(), 8, kIn, kIn}, cpu::ConstMatrix{w12.data(), 2 * kFfn, kIn, kIn}, nullptr,
              cpu::Matrix{ab.data(), 8, 2 * kFfn, 2 * kFfn}, false, &Pool());
  ab = RoundToBf16(ab);
  cpu::SwiGlu(cpu::ConstMatrix{ab.data(), 8, 2 * kFfn, 2 * kFfn}, cpu::Matrix{s.data(), 8, kFfn, kFfn}, &Pool());
  s = RoundToBf16(s);
  cpu::Linear(cpu::ConstMatrix{s.data(), 8, kFfn, kFfn}, cpu::ConstMatrix{w3.data(), kOut, kFfn, kFfn}, nullptr,
              cpu::Matrix{want.data(), 8, kOut, kOut}, true, &Pool());

  const auto x_d = UploadBf16(x), w12_d = UploadBf16(Interleave(w12, kFfn, kIn)), w3_d = UploadBf16(w3);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  for (const bool graph : {false, true}) {
    for (const int64_t n : {int64_t{1}, int64_t{3}, int64_t{8}}) {
      auto s_d = PoisonedBuffer<__nv_bfloat16>(n * kFfn);
      auto y_d = Upload(std::vector<float>(y0.begin(), y0.begin() + n * kOut));
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      auto launch = [&] {
        EXPECT_TRUE(LaunchGemvSwiGlu(x_d.data(), kIn, w12_d.data(), s_d.data(), kFfn, n, kIn, kFfn, stream).ok());
        EXPECT_TRUE(
            LaunchGemv(s_d.data(), kFfn, w3_d.data(), nullptr, y_d.data(), kOut, false, n, kFfn, kOut, true, stream)
                .ok());
      };
      if (graph) {
        cudaGraph_t g = nullptr;
        cudaGraphExec_t exec = nullptr;
        ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
        launch();
        ASSERT_EQ(cudaStreamEndCapture(stream, &g), cudaSuccess);
        ASSERT_EQ(cudaGraphInstantiate(&exec, g, 0), cudaSuccess);
        ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        cudaGraphExecDestroy(exec);
        cudaGraphDestroy(g);
      } else {
        launch();
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      }
      // s may round differently from the CPU's in the last bf16 bit: a
      // bf16-sized tolerance on y.
      EXPECT_LE(RelativeMaxError(Download(y_d), std::vector<float>(want.begin(), want.begin() + n * kOut)),
                kBf16Tolerance)
          << "n=" << n << (graph ? " graph" : " stream");
    }
  }
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

// Bad arguments are refused before any launch (no device needed).
TEST(CudaGemvFusedTest, RejectsBadArguments) {
  const auto* x = reinterpret_cast<const __nv_bfloat16*>(uintptr_t{4096});
  const auto* w = reinterpret_cast<const __nv_bfloat16*>(uintptr_t{8192});
  auto* y = reinterpret_cast<__nv_bfloat16*>(uintptr_t{16384});
  const GemvProblem good{x, 64, w, nullptr, y, 32, 64, 32};
  GemvProblem no_w = good;
  no_w.w = nullptr;
  GemvProblem short_stride = good;
  short_stride.x_stride = 63;
  EXPECT_EQ(LaunchGemvPair(good, no_w, false, 1, false, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchGemvPair(short_stride, good, false, 1, false, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchGemvPair(good, good, false, 0, false, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchGemvPair(good, good, false, 17, false, nullptr).code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(LaunchGemvSwiGlu(nullptr, 64, w, y, 16, 1, 64, 16, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchGemvSwiGlu(x, 64, nullptr, y, 16, 1, 64, 16, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchGemvSwiGlu(x, 64, w, nullptr, 16, 1, 64, 16, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchGemvSwiGlu(x, 64, w, y, 15, 1, 64, 16, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchGemvSwiGlu(x, 64, w, y, 16, 0, 64, 16, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchGemvSwiGlu(x, 64, w, y, 16, 17, 64, 16, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchGemvSwiGlu(x, 64, w, y, 16, 1, 64, 0, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchGemvSwiGlu(x, 63, w, y, 16, 1, 64, 16, nullptr).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace supra::cuda

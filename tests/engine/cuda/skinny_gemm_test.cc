// LaunchSkinnyGemm against cpu::Linear on bf16-rounded random inputs: batch
// sizes 1, 9, 16, 33, 64 and 128 (every padding of n), the Mistral-SUPRA
// projection shapes and odd ones, every epilogue (bf16 store, fp32 store,
// fp32 accumulate), strided x and y, split-K automatic, off and forced,
// determinism, batch invariance, CUDA-graph capture, chained launches with
// programmatic launch, two streams at once, and argument errors.
//
// Tolerances (max |got − want| / max |want|), as for the GEMV kernel
// (gemv_test.cc): fp32 y 1e-5 (the same exact products summed in fp32 in
// another order), bf16 y 8e-3 (one rounding to bf16 on top). The suite
// prints the worst errors it saw.
#include "engine/cuda/skinny_gemm.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/cpu/ops.h"
#include "engine/util/thread_pool.h"
#include "gtest/gtest.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace supra::cuda {
namespace {

using testing::Download;
using testing::RandomVector;
using testing::RelativeMaxError;
using testing::RoundBf16;
using testing::RoundToBf16;
using testing::Upload;
using testing::UploadBf16;

constexpr double kF32Tolerance = 1e-5;
// fp32 sums of `in` products in a different order than the CPU's: the error
// grows with the length of the sum (one k slice over in = 14336 measured
// 1.9e-5 on the H200).
double F32Tolerance(int64_t in) { return kF32Tolerance * std::max(1.0, static_cast<double>(in) / 4096.0); }
constexpr double kBf16Tolerance = 8e-3;
constexpr float kPadding = 777.0f;  // in y's row padding, which must stay untouched
constexpr int64_t kRows = kSkinnyGemmMaxRows;
constexpr int64_t kBatches[] = {1, 9, 16, 33, 64, 128};

ThreadPool& Pool() {
  static ThreadPool pool(0);
  return pool;
}

enum class Epilogue { kBf16Store, kF32Store, kF32Accumulate };
constexpr Epilogue kEpilogues[] = {Epilogue::kBf16Store, Epilogue::kF32Store, Epilogue::kF32Accumulate};

const char* Name(Epilogue e) {
  switch (e) {
    case Epilogue::kBf16Store:
      return "bf16 store";
    case Epilogue::kF32Store:
      return "fp32 store";
    case Epilogue::kF32Accumulate:
      return "fp32 accumulate";
  }
  return "?";
}

// Operands on the host (bf16-rounded floats) for up to 128 batch rows, and
// the CPU product of all 128 (cpu::Linear is batch invariant, so its first n
// rows are also its answer for n rows).
struct Problem {
  int64_t in = 0, out = 0, x_stride = 0;
  std::vector<float> x;        // [128, x_stride], the columns past in random too
  std::vector<float> w;        // [out, in]
  std::vector<float> y0;       // [128, out], the accumulate start values
  std::vector<float> product;  // [128, out] = x · Wᵀ

  static Problem Make(int64_t out, int64_t in, int64_t x_stride, uint32_t seed) {
    Problem p;
    p.in = in;
    p.out = out;
    p.x_stride = x_stride;
    p.x = RoundToBf16(RandomVector(kRows * x_stride, seed));
    p.w = RoundToBf16(RandomVector(out * in, seed + 1));
    p.y0 = RandomVector(kRows * out, seed + 2, -4.0f, 4.0f);
    p.product.resize(kRows * out);
    cpu::Linear(cpu::ConstMatrix{p.x.data(), kRows, in, x_stride}, cpu::ConstMatrix{p.w.data(), out, in, in}, nullptr,
                cpu::Matrix{p.product.data(), kRows, out, out}, false, &Pool());
    return p;
  }
};

// Device copies of a problem's operands.
struct DeviceProblem {
  DeviceBuffer<__nv_bfloat16> x, w;

  explicit DeviceProblem(const Problem& p) : x(UploadBf16(p.x)), w(UploadBf16(p.w)) {}
};

struct Case {
  Epilogue epilogue = Epilogue::kF32Store;
  int64_t n = 1;
  int64_t y_stride = 0;  // 0: out
  SkinnyGemmOptions options;
  int64_t x_row = 0;  // first x row (batch invariance)
};

std::string Describe(const Problem& p, const Case& c) {
  return absl::StrCat("out=", p.out, " in=", p.in, " x_stride=", p.x_stride, " n=", c.n, " y_stride=", c.y_stride, " ",
                      Name(c.epilogue), " split_k=", c.options.split_k, c.options.programmatic_launch ? "" : " serial",
                      c.options.prefetch_weights ? "" : " no-prefetch");
}

GemmOperands Operands(const Problem& p, const DeviceProblem& d, const Case& c, void* y) {
  return GemmOperands{.x = d.x.data() + c.x_row * p.x_stride,
                      .x_stride = p.x_stride,
                      .w = d.w.data(),
                      .y = y,
                      .y_stride = c.y_stride,
                      .y_is_bf16 = c.epilogue == Epilogue::kBf16Store,
                      .accumulate = c.epilogue == Epilogue::kF32Accumulate,
                      .n = c.n,
                      .in = p.in,
                      .out = p.out};
}

// y as the launch finds it: kPadding in the row padding, NaN (or, with
// accumulate, the start values) in the live part.
std::vector<float> InitialY(const Problem& p, const Case& c) {
  std::vector<float> y(c.n * c.y_stride, kPadding);
  for (int64_t j = 0; j < c.n; ++j) {
    for (int64_t r = 0; r < p.out; ++r) {
      y[j * c.y_stride + r] =
          c.epilogue == Epilogue::kF32Accumulate ? p.y0[j * p.out + r] : std::numeric_limits<float>::quiet_NaN();
    }
  }
  return y;
}

// Runs `launches` launches of the case on `stream` and returns all of y.
std::vector<float> RunCase(const Problem& p, const DeviceProblem& d, Case c, int launches = 1,
                           cudaStream_t stream = nullptr) {
  if (c.y_stride == 0) c.y_stride = p.out;
  const std::vector<float> y_host = InitialY(p, c);
  auto launch = [&](void* y) {
    for (int i = 0; i < launches; ++i) {
      const absl::Status status = LaunchSkinnyGemm(Operands(p, d, c, y), stream, c.options);
      EXPECT_TRUE(status.ok()) << status << " " << Describe(p, c);
    }
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  };
  if (c.epilogue == Epilogue::kBf16Store) {
    DeviceBuffer<__nv_bfloat16> y = UploadBf16(y_host);
    launch(y.data());
    return testing::DownloadBf16(y);
  }
  DeviceBuffer<float> y = Upload(y_host);
  launch(y.data());
  return Download(y);
}

// The CPU answer for the case with the row padding InitialY put there.
std::vector<float> Expected(const Problem& p, Case c) {
  if (c.y_stride == 0) c.y_stride = p.out;
  const bool bf16 = c.epilogue == Epilogue::kBf16Store;
  std::vector<float> y(c.n * c.y_stride, bf16 ? RoundBf16(kPadding) : kPadding);
  for (int64_t j = 0; j < c.n; ++j) {
    for (int64_t r = 0; r < p.out; ++r) {
      const float product = p.product[(c.x_row + j) * p.out + r];
      y[j * c.y_stride + r] = c.epilogue == Epilogue::kF32Accumulate ? p.y0[j * p.out + r] + product : product;
    }
  }
  return y;
}

struct WorstErrors {
  double f32 = 0, bf16 = 0;
  ~WorstErrors() { std::printf("CudaSkinnyGemmTest worst relative errors: fp32 y %.3g, bf16 y %.3g\n", f32, bf16); }
};
WorstErrors& Worst() {
  static WorstErrors worst;
  return worst;
}

void Check(const Problem& p, const DeviceProblem& d, const Case& c) {
  const double error = RelativeMaxError(RunCase(p, d, c), Expected(p, c));
  const bool bf16 = c.epilogue == Epilogue::kBf16Store;
  EXPECT_LE(error, bf16 ? kBf16Tolerance : F32Tolerance(p.in)) << Describe(p, c);
  double& worst = bf16 ? Worst().bf16 : Worst().f32;
  worst = std::max(worst, error);
}

// Every batch size and epilogue for each split in `splits`.
void CheckAll(const Problem& p, const std::vector<int>& splits, int64_t y_padding = 0) {
  const DeviceProblem d(p);
  for (const int split : splits) {
    for (const Epilogue epilogue : kEpilogues) {
      for (const int64_t n : kBatches) {
        Check(p, d, Case{.epilogue = epilogue, .n = n, .y_stride = p.out + y_padding, .options = {.split_k = split}});
      }
    }
  }
}

// Mistral-SUPRA's projections that decode batches of 9..64 run: out_proj and
// the q feature map (4096 × 4096), in_proj (6144 × 4096), w3 (4096 × 14336),
// the kv feature map (1024 × 1024); automatic split-K and none.
TEST(CudaSkinnyGemmTest, MistralShapes) {
  SUPRA_SKIP_WITHOUT_GPU();
  const std::pair<int64_t, int64_t> shapes[] = {{4096, 4096}, {6144, 4096}, {4096, 14336}, {1024, 1024}};
  uint32_t seed = 100;
  for (const auto& [out, in] : shapes) {
    CheckAll(Problem::Make(out, in, in, seed += 10), {0, 1});
  }
}

// Shapes off the tile grid: out not a multiple of 128 (or below 16), in not
// a multiple of 64, a single k-step, forced splits with uneven or empty
// trailing slices (in = 264: 5 k-steps, 4 slices of 2, 2, 1, 0).
TEST(CudaSkinnyGemmTest, OddShapes) {
  SUPRA_SKIP_WITHOUT_GPU();
  const std::pair<int64_t, int64_t> shapes[] = {
      // {out, in}
      {200, 264}, {37, 8}, {1, 64}, {130, 1000}, {129, 136}, {4097, 520}, {300, 4104},
  };
  uint32_t seed = 500;
  for (const auto& [out, in] : shapes) {
    CheckAll(Problem::Make(out, in, in, seed += 10), {0, 1, 4});
  }
}

// Row strides past the row length; y's padding must stay untouched.
TEST(CudaSkinnyGemmTest, Strides) {
  SUPRA_SKIP_WITHOUT_GPU();
  CheckAll(Problem::Make(200, 264, 264 + 24, 900), {0, 1}, /*y_padding=*/5);
  CheckAll(Problem::Make(1024, 1024, 1024 + 64, 910), {0, 2}, /*y_padding=*/3);
  CheckAll(Problem::Make(4096, 4096, 4096 + 8, 920), {0}, /*y_padding=*/1);
}

// Without programmatic launch, and with it but without the weight prefetch
// before the grid-dependency wait: the same results.
TEST(CudaSkinnyGemmTest, LaunchModes) {
  SUPRA_SKIP_WITHOUT_GPU();
  const Problem p = Problem::Make(4096, 4096, 4096, 950);
  const DeviceProblem d(p);
  const SkinnyGemmOptions modes[] = {{.programmatic_launch = false}, {.prefetch_weights = false}};
  for (const SkinnyGemmOptions& options : modes) {
    for (const Epilogue epilogue : kEpilogues) {
      for (const int64_t n : {int64_t{9}, int64_t{64}}) {
        Check(p, d, Case{.epilogue = epilogue, .n = n, .options = options});
      }
    }
  }
}

// Two runs give the same bits (split-K sums its slices in a fixed order),
// with and without programmatic launch.
TEST(CudaSkinnyGemmTest, Deterministic) {
  SUPRA_SKIP_WITHOUT_GPU();
  for (const auto& [out, in] : {std::pair<int64_t, int64_t>{4096, 4096}, {4096, 14336}, {200, 264}}) {
    const Problem p = Problem::Make(out, in, in, 1000 + static_cast<uint32_t>(in));
    const DeviceProblem d(p);
    for (const Epilogue epilogue : kEpilogues) {
      for (const int64_t n : {int64_t{16}, int64_t{64}}) {
        const Case c{.epilogue = epilogue, .n = n, .options = {}};
        const std::vector<float> first = RunCase(p, d, c);
        const std::vector<float> second = RunCase(p, d, c);
        Case serial = c;
        serial.options.programmatic_launch = false;
        const std::vector<float> third = RunCase(p, d, serial);
        ASSERT_EQ(first.size(), second.size());
        EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0) << Describe(p, c);
        EXPECT_EQ(std::memcmp(first.data(), third.data(), first.size() * sizeof(float)), 0) << Describe(p, serial);
      }
    }
  }
}

// A row's result does not depend on the batch around it: row j of a 64-row
// batch is bit-identical to the same x row run alone (n = 1).
TEST(CudaSkinnyGemmTest, BatchInvariant) {
  SUPRA_SKIP_WITHOUT_GPU();
  const Problem p = Problem::Make(4096, 4096, 4096, 1100);
  const DeviceProblem d(p);
  for (const Epilogue epilogue : {Epilogue::kF32Store, Epilogue::kBf16Store}) {
    const std::vector<float> batched = RunCase(p, d, Case{.epilogue = epilogue, .n = 64, .options = {}});
    for (const int64_t j : {0, 7, 8, 33, 63}) {
      const std::vector<float> alone = RunCase(p, d, Case{.epilogue = epilogue, .n = 1, .options = {}, .x_row = j});
      ASSERT_EQ(alone.size(), static_cast<size_t>(p.out));
      EXPECT_EQ(std::memcmp(alone.data(), batched.data() + j * p.out, p.out * sizeof(float)), 0)
          << "row " << j << " " << Name(epilogue);
    }
  }
}

// Captured in a CUDA graph (no allocation or synchronisation in the launch)
// and replayed three times: y0 + P + P + P, bit-identical to three eager
// launches.
TEST(CudaSkinnyGemmTest, GraphCapture) {
  SUPRA_SKIP_WITHOUT_GPU();
  const Problem p = Problem::Make(4096, 4096, 4096, 1200);
  const DeviceProblem d(p);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  for (const int64_t n : {int64_t{9}, int64_t{33}, int64_t{64}}) {
    const Case c{.epilogue = Epilogue::kF32Accumulate, .n = n, .y_stride = p.out, .options = {}};
    const std::vector<float> eager = RunCase(p, d, c, /*launches=*/3, stream);

    DeviceBuffer<float> y = Upload(InitialY(p, c));
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    const absl::Status status = LaunchSkinnyGemm(Operands(p, d, c, y.data()), stream, c.options);
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    ASSERT_TRUE(status.ok()) << status;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    const std::vector<float> replayed = Download(y);
    EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
    EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);

    ASSERT_EQ(replayed.size(), eager.size());
    EXPECT_EQ(std::memcmp(replayed.data(), eager.data(), eager.size() * sizeof(float)), 0) << "n=" << n;
    std::vector<float> want(n * p.out);
    for (int64_t i = 0; i < n * p.out; ++i) want[i] = p.y0[i] + 3.0f * p.product[i];
    EXPECT_LE(RelativeMaxError(replayed, want), kF32Tolerance) << "n=" << n;
  }
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

// Back-to-back launches where each reads what the one before wrote (the
// decoder's pattern): with programmatic launch a kernel
// starts before the previous one has finished, so reading x, y or the
// the other slices' shared memory too early would show. y1 = bf16(x · W1ᵀ); y2 = y1 · W2ᵀ;
// y2 += y1 · W3ᵀ.
TEST(CudaSkinnyGemmTest, ChainedLaunchesKeepStreamOrder) {
  SUPRA_SKIP_WITHOUT_GPU();
  constexpr int64_t kIn = 4096, kMid = 4096, kOut = 6144;
  const std::vector<float> x = RoundToBf16(RandomVector(kRows * kIn, 1300));
  const std::vector<float> w1 = RoundToBf16(RandomVector(kMid * kIn, 1301, -0.05f, 0.05f));
  const std::vector<float> w2 = RoundToBf16(RandomVector(kOut * kMid, 1302));
  const std::vector<float> w3 = RoundToBf16(RandomVector(kOut * kMid, 1303));
  const DeviceBuffer<__nv_bfloat16> x_d = UploadBf16(x), w1_d = UploadBf16(w1), w2_d = UploadBf16(w2),
                                    w3_d = UploadBf16(w3);

  std::vector<float> y1(kRows * kMid), want(kRows * kOut);
  cpu::Linear(cpu::ConstMatrix{x.data(), kRows, kIn, kIn}, cpu::ConstMatrix{w1.data(), kMid, kIn, kIn}, nullptr,
              cpu::Matrix{y1.data(), kRows, kMid, kMid}, false, &Pool());
  y1 = RoundToBf16(y1);
  cpu::Linear(cpu::ConstMatrix{y1.data(), kRows, kMid, kMid}, cpu::ConstMatrix{w2.data(), kOut, kMid, kMid}, nullptr,
              cpu::Matrix{want.data(), kRows, kOut, kOut}, false, &Pool());
  cpu::Linear(cpu::ConstMatrix{y1.data(), kRows, kMid, kMid}, cpu::ConstMatrix{w3.data(), kOut, kMid, kMid}, nullptr,
              cpu::Matrix{want.data(), kRows, kOut, kOut}, true, &Pool());

  cudaStream_t created = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking), cudaSuccess);
  for (const cudaStream_t stream : {cudaStream_t{nullptr}, created}) {
    for (const bool programmatic : {true, false}) {
      for (const int64_t n : {int64_t{9}, int64_t{33}, int64_t{64}}) {
        DeviceBuffer<__nv_bfloat16> y1_d = testing::PoisonedBuffer<__nv_bfloat16>(n * kMid);
        DeviceBuffer<float> y2_d = testing::PoisonedBuffer<float>(n * kOut);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const SkinnyGemmOptions options{.programmatic_launch = programmatic};
        auto run = [&](const GemmOperands& op) {
          const absl::Status status = LaunchSkinnyGemm(op, stream, options);
          EXPECT_TRUE(status.ok()) << status;
        };
        run({.x = x_d.data(),
             .x_stride = kIn,
             .w = w1_d.data(),
             .y = y1_d.data(),
             .y_stride = kMid,
             .y_is_bf16 = true,
             .n = n,
             .in = kIn,
             .out = kMid});
        run({.x = y1_d.data(),
             .x_stride = kMid,
             .w = w2_d.data(),
             .y = y2_d.data(),
             .y_stride = kOut,
             .n = n,
             .in = kMid,
             .out = kOut});
        run({.x = y1_d.data(),
             .x_stride = kMid,
             .w = w3_d.data(),
             .y = y2_d.data(),
             .y_stride = kOut,
             .accumulate = true,
             .n = n,
             .in = kMid,
             .out = kOut});
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        const std::vector<float> got = Download(y2_d);
        const std::vector<float> expected(want.begin(), want.begin() + n * kOut);
        // y1 may round differently from the CPU's in the last bf16 bit: a
        // bf16-sized tolerance (as in gemv_test.cc).
        EXPECT_LE(RelativeMaxError(got, expected), kBf16Tolerance)
            << "n=" << n << (stream == nullptr ? " default stream" : " created stream")
            << (programmatic ? " programmatic" : " serial");
      }
    }
  }
  EXPECT_EQ(cudaStreamDestroy(created), cudaSuccess);
}

// Launches on two streams may overlap (no shared workspace): both give the
// bits of a launch alone.
TEST(CudaSkinnyGemmTest, ConcurrentStreams) {
  SUPRA_SKIP_WITHOUT_GPU();
  const Problem p = Problem::Make(4096, 4096, 4096, 1400);
  const DeviceProblem d(p);
  const Case c{.epilogue = Epilogue::kF32Store, .n = 64, .y_stride = p.out, .options = {}};
  const std::vector<float> alone = RunCase(p, d, c);
  cudaStream_t streams[2] = {nullptr, nullptr};
  for (cudaStream_t& stream : streams)
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  std::vector<DeviceBuffer<float>> ys;
  for (int i = 0; i < 2; ++i) ys.push_back(testing::PoisonedBuffer<float>(c.n * p.out));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (int round = 0; round < 8; ++round) {
    for (int i = 0; i < 2; ++i) {
      const absl::Status status = LaunchSkinnyGemm(Operands(p, d, c, ys[i].data()), streams[i], c.options);
      ASSERT_TRUE(status.ok()) << status;
    }
  }
  for (int i = 0; i < 2; ++i) {
    const std::vector<float> got = Download(ys[i]);
    ASSERT_EQ(got.size(), alone.size());
    EXPECT_EQ(std::memcmp(got.data(), alone.data(), alone.size() * sizeof(float)), 0) << "stream " << i;
    EXPECT_EQ(cudaStreamDestroy(streams[i]), cudaSuccess);
  }
}

// Bad arguments are refused before any launch (no device needed).
TEST(CudaSkinnyGemmTest, RejectsBadArguments) {
  // Never dereferenced: every call below fails validation first.
  const auto* x = reinterpret_cast<const __nv_bfloat16*>(uintptr_t{4096});
  const auto* w = reinterpret_cast<const __nv_bfloat16*>(uintptr_t{8192});
  void* y = reinterpret_cast<void*>(uintptr_t{16384});
  const GemmOperands good{.x = x, .x_stride = 64, .w = w, .y = y, .y_stride = 32, .n = 16, .in = 64, .out = 32};
  auto code = [&](const GemmOperands& op) { return LaunchSkinnyGemm(op, nullptr).code(); };
  auto with = [&](GemmOperands op, auto edit) {
    edit(op);
    return op;
  };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.x = nullptr; })), kInvalid);
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.w = nullptr; })), kInvalid);
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.y = nullptr; })), kInvalid);
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.n = 0; })), kInvalid);
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.n = -1; })), kInvalid);
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.n = kSkinnyGemmMaxRows + 1; })), kInvalid);
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.in = 0; })), kInvalid);
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.out = 0; })), kInvalid);
  EXPECT_EQ(code(with(good,
                      [](GemmOperands& o) {
                        o.in = 60;
                        o.x_stride = 60;
                      })),
            kInvalid);  // in % 8
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.x_stride = 63; })), kInvalid);
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.x_stride = 68; })), kInvalid);  // x_stride % 8
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.y_stride = 31; })), kInvalid);
  EXPECT_EQ(code(with(good, [&](GemmOperands& o) { o.x = x + 1; })), kInvalid);  // x not 16-byte aligned
  EXPECT_EQ(code(with(good, [&](GemmOperands& o) { o.w = w + 4; })), kInvalid);  // W not 16-byte aligned
  EXPECT_EQ(code(with(good,
                      [](GemmOperands& o) {
                        o.y_is_bf16 = true;
                        o.accumulate = true;
                      })),
            kInvalid);
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.in = o.x_stride = int64_t{1} << 40; })), kInvalid);
  EXPECT_EQ(code(with(good, [](GemmOperands& o) { o.out = o.y_stride = int64_t{1} << 40; })), kInvalid);
}

}  // namespace
}  // namespace supra::cuda

// LaunchRecurrentAttention (one decode step of one layer, GroupNorm fused)
// against cpu::RecurrentAttention + cpu::GroupNorm, for both of its kernels
// (DecodeAttentionKernel::kCluster and kStream) and the automatic choice, at
// batch 1, 3, 64 and 257 on Mistral-SUPRA's shapes, fp32 and bf16 pools, slots
// at and above 128 (64-bit offsets from slot 128 of a 32-layer pool), slots
// outside the pool mixed in; and the two kernels against each other, bit for
// bit. A timing (DISABLED_, run with --gtest_also_run_disabled_tests) reports
// µs per launch and GB/s of state traffic with a pool far larger than L2.
//
// Inputs as in attention_test.cc: q ≥ 0 (max(0, N(0, 1))), k̃ the same scaled
// by 1/sqrt(F), v N(0, 1) in bf16 at an odd offset of a qkv-like row, states
// uniform in [-3, 3) (bf16-exact for a bf16 pool), Mistral-SUPRA's gammas.
// Tolerances: outputs 1e-2 of the largest (bf16 after GroupNorm); fp32 states
// 1e-5 of the largest; bf16 states within half an ulp of the CPU's fp32
// value plus 1e-5 of the largest (see attention_test.cc for the derivation).
//
// The device pool is allocated in full (so offsets are real) but only the
// sequences' layer states and a few untouched neighbours are written and read
// back: neighbours must stay bit-identical.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "engine/cpu/ops.h"
#include "engine/cuda/attention_common.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/recurrent_attention.h"
#include "engine/model/config.h"
#include "engine/model/decay.h"
#include "engine/util/thread_pool.h"
#include "gtest/gtest.h"
#include "tests/engine/cuda/attention_test_util.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace supra::cuda {
namespace {

using ::supra::cuda::testing::DownloadBf16;
using ::supra::cuda::testing::CpuPool;
using ::supra::cuda::testing::Gammas;
using ::supra::cuda::testing::RoundBf16;
using ::supra::cuda::testing::ShuffledSlots;
using ::supra::cuda::testing::StateElems;
using ::supra::cuda::testing::PoisonedBuffer;
using ::supra::cuda::testing::RelativeMaxError;
using ::supra::cuda::testing::Upload;
using ::supra::cuda::testing::UploadBf16;

constexpr double kOutputTolerance = 1e-2;
constexpr double kStateF32Tolerance = 1e-5;
constexpr AttentionDims kMistral{32, 8, 8, 128, 128};

template <typename T>
constexpr bool kIsBf16 = !std::is_same_v<T, float>;

const char* KernelName(DecodeAttentionKernel kernel) {
  switch (kernel) {
    case DecodeAttentionKernel::kCluster:
      return "cluster";
    case DecodeAttentionKernel::kStream:
      return "stream";
    default:
      return "auto";
  }
}

// One layer's inputs for n rows; v at an odd offset of a qkv-like row.
struct Inputs {
  std::vector<float> q, k, v;  // [n, H·F], [n, Hk·F], [n, v_stride] (bf16-exact)
  int64_t v_stride = 0, v_offset = 0;
};

Inputs MakeInputs(const AttentionDims& d, int n, uint32_t seed) {
  Inputs in;
  in.v_offset = int64_t{d.heads + d.value_heads} * d.features + 1;
  in.v_stride = in.v_offset + int64_t{d.value_heads} * d.value_dim;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float k_scale = 1.0f / std::sqrt(static_cast<float>(d.features));
  in.q.resize(static_cast<size_t>(n) * d.heads * d.features);
  for (float& x : in.q) x = std::max(0.0f, normal(rng));
  in.k.resize(static_cast<size_t>(n) * d.key_heads * d.features);
  for (float& x : in.k) x = std::max(0.0f, normal(rng)) * k_scale;
  in.v.resize(static_cast<size_t>(n) * in.v_stride);
  for (float& x : in.v) x = RoundBf16(normal(rng));
  return in;
}

struct PoolSpec {
  int slots = 0, layers = 0, layer = 0;
};

// A decode step's result: the output and the state blocks read back (the
// sequences' blocks in slot order, then the neighbours).
struct StepResult {
  std::vector<float> out;     // [n, H·Dv]
  std::vector<float> blocks;  // [blocks, H·F·Dv]
};

template <typename StateT>
void WriteBlock(StateT* pool, int64_t block, int64_t elems, const float* values) {
  std::vector<StateT> converted(elems);
  for (int64_t i = 0; i < elems; ++i) {
    if constexpr (kIsBf16<StateT>) {
      converted[i] = __float2bfloat16(values[i]);
    } else {
      converted[i] = values[i];
    }
  }
  ASSERT_EQ(cudaMemcpy(pool + block * elems, converted.data(), elems * sizeof(StateT), cudaMemcpyHostToDevice),
            cudaSuccess);
}

template <typename StateT>
void ReadBlock(const StateT* pool, int64_t block, int64_t elems, float* values) {
  std::vector<StateT> raw(elems);
  ASSERT_EQ(cudaMemcpy(raw.data(), pool + block * elems, elems * sizeof(StateT), cudaMemcpyDeviceToHost),
            cudaSuccess);
  for (int64_t i = 0; i < elems; ++i) {
    if constexpr (kIsBf16<StateT>) {
      values[i] = __bfloat162float(raw[i]);
    } else {
      values[i] = raw[i];
    }
  }
}

// Runs one step with `kernel` on a fresh pool and checks it against the CPU.
// Slots outside [0, spec.slots) are skipped: their output rows must stay
// poisoned (NaN). Returns what the GPU produced (for the cross-kernel test).
template <typename StateT>
StepResult RunParity(const AttentionDims& d, const PoolSpec& spec, const std::vector<int32_t>& slots, uint32_t seed,
                     DecodeAttentionKernel kernel) {
  StepResult result;
  const int n = static_cast<int>(slots.size());
  const int64_t elems = StateElems(d), hdv = int64_t{d.heads} * d.value_dim;
  const size_t pool_elems = static_cast<size_t>(spec.slots) * spec.layers * elems;
  size_t free_bytes = 0, total_bytes = 0;
  EXPECT_EQ(cudaMemGetInfo(&free_bytes, &total_bytes), cudaSuccess);
  if (free_bytes < pool_elems * sizeof(StateT) + (size_t{1} << 30)) {
    ADD_FAILURE() << "needs " << pool_elems * sizeof(StateT) << " bytes of GPU memory";
    return result;
  }
  auto pool_d = DeviceBuffer<StateT>::Allocate(pool_elems, "test pool");
  EXPECT_TRUE(pool_d.ok()) << pool_d.status();
  if (!pool_d.ok()) return result;

  // Blocks: the valid sequences' states, then up to 8 untouched neighbours.
  std::vector<int64_t> blocks;
  std::vector<int> row_block(n, -1);
  std::set<int64_t> touched;
  for (int i = 0; i < n; ++i) {
    if (slots[i] < 0 || slots[i] >= spec.slots) continue;
    row_block[i] = static_cast<int>(blocks.size());
    blocks.push_back(int64_t{slots[i]} * spec.layers + spec.layer);
    touched.insert(blocks.back());
  }
  const size_t num_touched = blocks.size();
  const int64_t num_blocks = int64_t{spec.slots} * spec.layers;
  for (size_t b = 0; b < num_touched && blocks.size() < num_touched + 8; ++b) {
    for (int64_t neighbour : {blocks[b] - 1, blocks[b] + 1}) {
      if (neighbour >= 0 && neighbour < num_blocks && touched.count(neighbour) == 0 &&
          std::find(blocks.begin() + num_touched, blocks.end(), neighbour) == blocks.end()) {
        blocks.push_back(neighbour);
      }
    }
  }

  std::vector<float> initial(blocks.size() * elems);
  std::mt19937 rng(seed + 1);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  for (float& x : initial) x = kIsBf16<StateT> ? RoundBf16(uniform(rng)) : uniform(rng);
  for (size_t b = 0; b < blocks.size(); ++b) WriteBlock(pool_d->data(), blocks[b], elems, initial.data() + b * elems);

  // CPU reference; skipped rows update a scratch state nobody checks.
  const Inputs in = MakeInputs(d, n, seed);
  const std::vector<float> gammas = Gammas(d.heads);
  std::vector<float> want = initial;
  std::vector<float*> states(n);
  for (int i = 0; i < n; ++i) states[i] = row_block[i] >= 0 ? want.data() + row_block[i] * elems : nullptr;
  std::vector<std::vector<float>> scratches;
  scratches.reserve(n);  // states[] points into them
  for (int i = 0; i < n; ++i) {
    if (states[i] == nullptr) {
      scratches.emplace_back(elems, 0.0f);
      states[i] = scratches.back().data();
    }
  }
  std::vector<float> want_out(n * hdv);
  const int64_t hf = int64_t{d.heads} * d.features, hkf = int64_t{d.key_heads} * d.features;
  cpu::RecurrentAttention(cpu::AttentionShape{d.heads, d.key_heads, d.value_heads, d.features, d.value_dim},
                          cpu::ConstMatrix{in.q.data(), n, hf, hf}, cpu::ConstMatrix{in.k.data(), n, hkf, hkf},
                          cpu::ConstMatrix{in.v.data() + in.v_offset, n, int64_t{d.value_heads} * d.value_dim,
                                           in.v_stride},
                          gammas, states, cpu::Matrix{want_out.data(), n, hdv, hdv}, CpuPool());
  cpu::GroupNorm(cpu::Matrix{want_out.data(), n, hdv, hdv}, d.value_dim, 1e-5, CpuPool());

  const auto q = Upload(in.q);
  const auto k = Upload(in.k);
  const auto v = UploadBf16(in.v);
  const auto g = Upload(gammas);
  const auto s = Upload(slots);
  auto out = PoisonedBuffer<__nv_bfloat16>(n * hdv);
  const absl::Status status = LaunchRecurrentAttention(
      d, q.data(), k.data(), v.data() + in.v_offset, in.v_stride, g.data(), s.data(), n,
      StatePoolLayer<StateT>{pool_d->data(), spec.slots, spec.layers, spec.layer}, out.data(), nullptr, kernel);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  result.out = DownloadBf16(out);
  result.blocks.resize(blocks.size() * elems);
  for (size_t b = 0; b < blocks.size(); ++b) ReadBlock(pool_d->data(), blocks[b], elems, result.blocks.data() + b * elems);

  // Outputs: valid rows against the CPU, skipped rows still NaN.
  std::vector<float> got_valid, want_valid;
  int64_t written_skipped = 0;
  for (int i = 0; i < n; ++i) {
    const auto row = [&](const std::vector<float>& m) {
      return std::vector<float>(m.begin() + i * hdv, m.begin() + (i + 1) * hdv);
    };
    if (row_block[i] >= 0) {
      const std::vector<float> g_row = row(result.out), w_row = row(want_out);
      got_valid.insert(got_valid.end(), g_row.begin(), g_row.end());
      want_valid.insert(want_valid.end(), w_row.begin(), w_row.end());
    } else {
      for (float x : row(result.out)) written_skipped += std::isnan(x) ? 0 : 1;
    }
  }
  EXPECT_LE(RelativeMaxError(got_valid, want_valid), kOutputTolerance);
  EXPECT_EQ(written_skipped, 0) << "output of skipped sequences written";

  // States: the sequences' within tolerance, the neighbours untouched.
  double max_ref = 0, max_diff = 0;
  int64_t bad_touched = 0, bad_untouched = 0;
  for (size_t i = 0; i < num_touched * elems; ++i) max_ref = std::max(max_ref, std::abs(double{want[i]}));
  for (size_t i = 0; i < want.size(); ++i) {
    if (i >= num_touched * elems) {
      if (std::memcmp(&result.blocks[i], &want[i], sizeof(float)) != 0) ++bad_untouched;
      continue;
    }
    const double diff = std::abs(double{result.blocks[i]} - want[i]);
    if (!std::isfinite(result.blocks[i])) {
      ++bad_touched;
      continue;
    }
    max_diff = std::max(max_diff, diff);
    if (kIsBf16<StateT> && diff > 0x1.0p-8 * std::abs(double{want[i]}) + 1e-5 * max_ref) ++bad_touched;
  }
  EXPECT_EQ(bad_untouched, 0) << "state changed outside the sequences' layer states";
  EXPECT_EQ(bad_touched, 0) << "max diff " << max_diff << " of " << max_ref;
  if (!kIsBf16<StateT> && max_ref > 0) {
    EXPECT_LE(max_diff / max_ref, kStateF32Tolerance);
  }
  return result;
}

// Batch n on Mistral-SUPRA's shape: shuffled slots of a pool of n + 40
// (at least 132, so slots 128 and above occur), layer 1 of 2.
std::vector<int32_t> BatchSlots(int n, uint32_t seed) {
  std::vector<int32_t> slots = ShuffledSlots(n, std::max(n + 40, 132), seed);
  if (n <= 3) slots = std::vector<int32_t>{131, 7, 128}, slots.resize(n);
  return slots;
}

struct BatchCase {
  int batch;
  DecodeAttentionKernel kernel;
};

class RecurrentAttentionBatchTest : public ::testing::TestWithParam<BatchCase> {};

TEST_P(RecurrentAttentionBatchTest, MistralF32State) {
  SUPRA_SKIP_WITHOUT_GPU();
  const BatchCase c = GetParam();
  RunParity<float>(kMistral, PoolSpec{std::max(c.batch + 40, 132), 2, 1}, BatchSlots(c.batch, 31), 32, c.kernel);
}

TEST_P(RecurrentAttentionBatchTest, MistralBf16State) {
  SUPRA_SKIP_WITHOUT_GPU();
  const BatchCase c = GetParam();
  RunParity<__nv_bfloat16>(kMistral, PoolSpec{std::max(c.batch + 40, 132), 2, 1}, BatchSlots(c.batch, 33), 34,
                           c.kernel);
}

std::vector<BatchCase> BatchCases() {
  std::vector<BatchCase> cases;
  for (int batch : {1, 3, 64, 257}) {
    for (DecodeAttentionKernel kernel :
         {DecodeAttentionKernel::kAuto, DecodeAttentionKernel::kCluster, DecodeAttentionKernel::kStream}) {
      cases.push_back({batch, kernel});
    }
  }
  return cases;
}

std::string BatchCaseName(const ::testing::TestParamInfo<BatchCase>& info) {
  return "batch" + std::to_string(info.param.batch) + "_" + KernelName(info.param.kernel);
}

INSTANTIATE_TEST_SUITE_P(Batches, RecurrentAttentionBatchTest, ::testing::ValuesIn(BatchCases()), BatchCaseName);

// 64-bit offsets: slot 128 of a 32-layer pool at layer 31 starts past 2^31
// elements (fp32: 8.7 GB pool; bf16: 4.4 GB).
TEST(RecurrentAttentionLargePoolTest, SlotsAbove128AtLayer31) {
  SUPRA_SKIP_WITHOUT_GPU();
  for (DecodeAttentionKernel kernel : {DecodeAttentionKernel::kCluster, DecodeAttentionKernel::kStream}) {
    SCOPED_TRACE(KernelName(kernel));
    RunParity<float>(kMistral, PoolSpec{130, 32, 31}, {129, 5, 128}, 41, kernel);
    RunParity<__nv_bfloat16>(kMistral, PoolSpec{130, 32, 31}, {128, 129, 0, 64}, 42, kernel);
  }
}

// Slots outside the pool (negative, == slots, large) in a batch large enough
// for several items per streaming block: skipped, nothing written for them.
TEST(RecurrentAttentionSkipTest, SlotsOutsideThePoolAreSkipped) {
  SUPRA_SKIP_WITHOUT_GPU();
  std::vector<int32_t> slots = ShuffledSlots(40, 140, 51);
  slots[0] = -1, slots[7] = 140, slots[13] = 1 << 30, slots[39] = -5;
  for (DecodeAttentionKernel kernel : {DecodeAttentionKernel::kCluster, DecodeAttentionKernel::kStream}) {
    SCOPED_TRACE(KernelName(kernel));
    RunParity<float>(kMistral, PoolSpec{140, 1, 0}, slots, 52, kernel);
    RunParity<__nv_bfloat16>(kMistral, PoolSpec{140, 1, 0}, slots, 53, kernel);
  }
}

// The streaming kernel fuses the cluster kernel's blocks and keeps their
// arithmetic and order: both must agree bit for bit, on Mistral-SUPRA and on
// the other shapes it takes (F not a multiple of 16, F < 16, partial tiles,
// qk norm).
template <typename StateT>
void ExpectKernelsIdentical(const AttentionDims& d, int n, uint32_t seed) {
  const PoolSpec spec{n + 9, 2, 0};
  const std::vector<int32_t> slots = ShuffledSlots(n, spec.slots, seed);
  const StepResult cluster = RunParity<StateT>(d, spec, slots, seed, DecodeAttentionKernel::kCluster);
  const StepResult stream = RunParity<StateT>(d, spec, slots, seed, DecodeAttentionKernel::kStream);
  ASSERT_EQ(cluster.out.size(), stream.out.size());
  ASSERT_EQ(cluster.blocks.size(), stream.blocks.size());
  EXPECT_EQ(std::memcmp(cluster.out.data(), stream.out.data(), cluster.out.size() * sizeof(float)), 0)
      << "outputs differ";
  EXPECT_EQ(std::memcmp(cluster.blocks.data(), stream.blocks.data(), cluster.blocks.size() * sizeof(float)), 0)
      << "states differ";
}

struct ShapeCase {
  const char* name;
  AttentionDims dims;
};

std::string ShapeCaseName(const ::testing::TestParamInfo<ShapeCase>& info) { return info.param.name; }

class RecurrentAttentionKernelsTest : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(RecurrentAttentionKernelsTest, StreamEqualsClusterF32) {
  SUPRA_SKIP_WITHOUT_GPU();
  ExpectKernelsIdentical<float>(GetParam().dims, 67, 61);
}

TEST_P(RecurrentAttentionKernelsTest, StreamEqualsClusterBf16) {
  SUPRA_SKIP_WITHOUT_GPU();
  ExpectKernelsIdentical<__nv_bfloat16>(GetParam().dims, 67, 62);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RecurrentAttentionKernelsTest,
                         ::testing::Values(ShapeCase{"mistral", kMistral},
                                           ShapeCase{"mistral_qknorm", {32, 32, 8, 128, 128}},
                                           ShapeCase{"f100_dv96", {8, 4, 4, 100, 96}},  // 3 fp32 tiles, F % 16 = 4
                                           ShapeCase{"f8_dv8", {4, 4, 2, 8, 8}},        // F < 16 row groups
                                           ShapeCase{"f64_dv40", {6, 3, 3, 64, 40}}),   // partial tiles
                         ShapeCaseName);

// ---- timing (not a test: run with --gtest_also_run_disabled_tests) --------

// Each launch reads and writes its own batch of slots of a pool 8-32 times
// larger than L2 (launches rotate over disjoint slot sets, so no launch reads
// what the one before it wrote and every read is cold), in-stream with
// programmatic launch as in a decode step.
template <typename StateT>
void TimeMistral() {
  const AttentionDims d = kMistral;
  const int64_t elems = StateElems(d);
  const int pool_slots = kIsBf16<StateT> ? 2048 : 1024;  // 2 GiB either way
  auto pool = DeviceBuffer<StateT>::Allocate(static_cast<size_t>(pool_slots) * elems, "timing pool");
  ASSERT_TRUE(pool.ok()) << pool.status();
  ASSERT_EQ(cudaMemset(pool->data(), 0, pool->bytes()), cudaSuccess);
  const StatePoolLayer<StateT> layer{pool->data(), pool_slots, 1, 0};
  const auto g = Upload(Gammas(d.heads));
  const char* dtype = kIsBf16<StateT> ? "bf16" : "fp32";
  const std::vector<int32_t> order = ShuffledSlots(pool_slots, pool_slots, 71);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t start = nullptr, stop = nullptr;
  ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&stop), cudaSuccess);
  // 2-8: where kAuto switches from the cluster to the streaming kernel.
  for (int n : {1, 2, 4, 5, 6, 8, 16, 32, 64, 128, 256}) {
    const Inputs in = MakeInputs(d, n, 72);
    const auto q = Upload(in.q);
    const auto k = Upload(in.k);
    const auto v = UploadBf16(in.v);
    const int sets = std::min(pool_slots / n, 256);
    std::vector<DeviceBuffer<int32_t>> slot_sets;
    for (int s = 0; s < sets; ++s) {
      slot_sets.push_back(Upload(std::vector<int32_t>(order.begin() + s * n, order.begin() + (s + 1) * n)));
    }
    auto out = PoisonedBuffer<__nv_bfloat16>(n * d.heads * d.value_dim);
    const int iterations = std::max(2 * sets, 100);
    for (DecodeAttentionKernel kernel :
         {DecodeAttentionKernel::kCluster, DecodeAttentionKernel::kStream, DecodeAttentionKernel::kAuto}) {
      absl::Status status;
      const auto launch = [&](int i) {
        status.Update(LaunchRecurrentAttention(d, q.data(), k.data(), v.data() + in.v_offset, in.v_stride, g.data(),
                                               slot_sets[i % sets].data(), n, layer, out.data(), stream, kernel));
      };
      for (int i = 0; i < sets; ++i) launch(i);  // warm-up
      ASSERT_EQ(cudaEventRecord(start, stream), cudaSuccess);
      for (int i = 0; i < iterations; ++i) launch(i);
      ASSERT_EQ(cudaEventRecord(stop, stream), cudaSuccess);
      ASSERT_EQ(cudaEventSynchronize(stop), cudaSuccess);
      ASSERT_TRUE(status.ok()) << status;
      float ms = 0;
      ASSERT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaSuccess);
      const double us = 1e3 * ms / iterations;
      const double bytes = 2.0 * n * elems * sizeof(StateT);
      std::printf("decode attention %s state, batch %3d, %-7s kernel: %8.2f us per launch, %7.1f GB/s of state traffic\n",
                  dtype, n, KernelName(kernel), us, bytes / (us * 1e-6) / 1e9);
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
}

TEST(CudaRecurrentAttentionTiming, DISABLED_Mistral) {
  SUPRA_SKIP_WITHOUT_GPU();
  TimeMistral<float>();
  TimeMistral<__nv_bfloat16>();
}

}  // namespace
}  // namespace supra::cuda

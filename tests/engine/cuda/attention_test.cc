// Parity of the linear-attention kernels with the CPU reference:
// LaunchRecurrentAttention (decode) against cpu::RecurrentAttention +
// cpu::GroupNorm, LaunchChunkedAttention (prefill: its SIMT kernel, its
// tensor-core 3xTF32 kernel and its two-pass kernels with a workspace) against
// cpu::ChunkedAttention + cpu::GroupNorm,
// and chunked prefill over several launches == token-by-token decode on the
// GPU. Outputs and updated states
// are both compared; state blocks the kernel must not touch must stay
// bit-identical, and output rows no chunk covers must stay poisoned.
//
// Inputs: non-negative ReLU-like features (max(0, N(0, 1)), keys scaled by
// 1/sqrt(F)), values N(0, 1) in bf16 read from a qkv-like strided row at an
// odd offset, states uniform in [-3, 3) (never zero), gammas from the
// lightning slopes (for H = 32 those of Mistral-SUPRA, 0.43 to 0.996).
//
// Tolerances (relative to the largest reference value):
// - outputs (bf16, after GroupNorm): 1e-2. Rounding to bf16 costs up to 2^-9
//   of a value; the kernels' fp32 sums differ from the CPU's float64 ones by
//   ~1e-6, which GroupNorm scales by 1/std of the head's outputs (about 1 here).
// - fp32 states: 1e-5. Each step sums at most F + 64 fp32 products. The
//   two-pass kernels meet the same bound: their 3xTF32 products are within
//   ~2^-21 of the fp32 ones and their mma accumulation truncates at most about
//   an ulp per 8 products (analysis in engine/cuda/chunked_attention_mma.cuh).
// - bf16 states: each element within half a bf16 ulp (2^-8 relative) of the
//   CPU's fp32 result, plus 1e-5 of the largest value: the kernel rounds its
//   fp32 result once (the round trip bf16 -> fp32 -> bf16 adds nothing else).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "engine/cpu/ops.h"
#include "engine/cuda/attention_common.h"
#include "engine/cuda/chunked_attention.h"
#include "engine/cuda/chunked_attention_two_pass.h"
#include "engine/cuda/recurrent_attention.h"
#include "engine/model/config.h"
#include "engine/model/decay.h"
#include "engine/util/thread_pool.h"
#include "gtest/gtest.h"
#include "tests/engine/cuda/attention_test_util.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace supra::cuda {
namespace {

using ::supra::cuda::testing::CpuPool;
using ::supra::cuda::testing::Download;
using ::supra::cuda::testing::DownloadBf16;
using ::supra::cuda::testing::Gammas;
using ::supra::cuda::testing::PoisonedBuffer;
using ::supra::cuda::testing::RelativeMaxError;
using ::supra::cuda::testing::RoundBf16;
using ::supra::cuda::testing::ShuffledSlots;
using ::supra::cuda::testing::StateElems;
using ::supra::cuda::testing::Upload;
using ::supra::cuda::testing::UploadBf16;

constexpr double kOutputTolerance = 1e-2;
constexpr double kStateF32Tolerance = 1e-5;
constexpr double kGroupNormEpsD = 1e-5;

cpu::AttentionShape CpuShape(const AttentionDims& d) {
  return cpu::AttentionShape{d.heads, d.key_heads, d.value_heads, d.features, d.value_dim};
}

// A fast deterministic uniform in [lo, hi) for index i (pools are large).
float HashUniform(uint64_t seed, uint64_t i, float lo, float hi) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return lo + (hi - lo) * static_cast<float>(static_cast<double>(z >> 40) * 0x1.0p-24);
}

// States in [-3, 3), exactly representable in bf16 when the pool is bf16.
std::vector<float> MakeStates(size_t n, uint64_t seed, bool bf16) {
  std::vector<float> s(n);
  for (size_t i = 0; i < n; ++i) {
    const float x = HashUniform(seed, i, -3.0f, 3.0f);
    s[i] = bf16 ? RoundBf16(x) : x;
  }
  return s;
}

// One layer's attention inputs for `rows` rows. v sits in a qkv-like row of
// stride (H + Hkv)·F + 1 + Hkv·Dv at the odd offset (H + Hkv)·F + 1.
struct Inputs {
  int rows = 0;
  std::vector<float> q;  // [rows, H·F]
  std::vector<float> k;  // [rows, Hk·F]
  std::vector<float> v;  // [rows, v_stride], bf16-exact
  int64_t v_stride = 0, v_offset = 0;
};

// With `aligned_v`, v starts at a multiple of 8 elements (16 bytes) and the
// stride is one too, as in the backend's qkv buffer (the kernels' vector
// loads); otherwise the odd offset above (their scalar paths).
Inputs EmptyInputs(const AttentionDims& d, bool aligned_v = false) {
  Inputs in;
  in.v_offset = int64_t{d.heads + d.value_heads} * d.features + 1;
  in.v_stride = in.v_offset + int64_t{d.value_heads} * d.value_dim;
  if (aligned_v) {
    in.v_offset = (in.v_offset + 7) / 8 * 8;
    in.v_stride = (in.v_offset + int64_t{d.value_heads} * d.value_dim + 7) / 8 * 8;
  }
  return in;
}

Inputs MakeInputs(const AttentionDims& d, int rows, uint32_t seed, bool aligned_v = false) {
  Inputs in = EmptyInputs(d, aligned_v);
  in.rows = rows;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float k_scale = 1.0f / std::sqrt(static_cast<float>(d.features));
  in.q.resize(static_cast<size_t>(rows) * d.heads * d.features);
  for (float& x : in.q) x = std::max(0.0f, normal(rng));
  in.k.resize(static_cast<size_t>(rows) * d.key_heads * d.features);
  for (float& x : in.k) x = std::max(0.0f, normal(rng)) * k_scale;
  in.v.resize(static_cast<size_t>(rows) * in.v_stride);
  for (float& x : in.v) x = RoundBf16(normal(rng));
  return in;
}

void AppendRow(const Inputs& src, int row, Inputs& dst) {
  const size_t qw = src.q.size() / src.rows, kw = src.k.size() / src.rows, vw = src.v_stride;
  dst.q.insert(dst.q.end(), src.q.begin() + row * qw, src.q.begin() + (row + 1) * qw);
  dst.k.insert(dst.k.end(), src.k.begin() + row * kw, src.k.begin() + (row + 1) * kw);
  dst.v.insert(dst.v.end(), src.v.begin() + row * vw, src.v.begin() + (row + 1) * vw);
  ++dst.rows;
}

struct PoolSpec {
  int slots = 0, layers = 0, layer = 0;
};

template <typename T>
DeviceBuffer<T> UploadState(const std::vector<float>& host) {
  if constexpr (std::is_same_v<T, float>) {
    return Upload(host);
  } else {
    return UploadBf16(host);
  }
}

template <typename T>
std::vector<float> DownloadState(const DeviceBuffer<T>& buffer) {
  if constexpr (std::is_same_v<T, float>) {
    return Download(buffer);
  } else {
    return DownloadBf16(buffer);
  }
}

// The pool after the kernel against the CPU's: blocks of `block` elements
// listed in `touched` within the state tolerance of the dtype, every other
// block bit-identical to the CPU's (which left it alone).
template <typename T>
void ExpectPoolMatches(const std::vector<float>& got, const std::vector<float>& want, int64_t block,
                       const std::vector<int64_t>& touched) {
  ASSERT_EQ(got.size(), want.size());
  std::vector<bool> is_touched(want.size() / block, false);
  for (int64_t b : touched) is_touched[b] = true;
  double max_ref = 0;
  for (float x : want) max_ref = std::max(max_ref, std::abs(static_cast<double>(x)));
  int64_t bad_untouched = 0, bad_touched = 0;
  double max_diff = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double diff = std::abs(static_cast<double>(got[i]) - want[i]);
    if (!is_touched[i / block]) {
      if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) ++bad_untouched;
      continue;
    }
    if (!std::isfinite(got[i])) {
      ++bad_touched;
      continue;
    }
    max_diff = std::max(max_diff, diff);
    if constexpr (!std::is_same_v<T, float>) {
      if (diff > 0x1.0p-8 * std::abs(static_cast<double>(want[i])) + 1e-5 * max_ref) ++bad_touched;
    }
  }
  EXPECT_EQ(bad_untouched, 0) << "state elements changed outside the sequences' layer states";
  if constexpr (std::is_same_v<T, float>) {
    EXPECT_LE(max_diff / max_ref, kStateF32Tolerance);
  } else {
    EXPECT_EQ(bad_touched, 0) << "bf16 state elements farther than half an ulp from the fp32 reference (max diff "
                              << max_diff << " of " << max_ref << ")";
  }
}

template <typename T>
constexpr bool kIsBf16 = !std::is_same_v<T, float>;

// Rows [row, row + count) of a [rows, width] matrix.
std::vector<float> RowsOf(const std::vector<float>& m, int64_t width, int64_t row, int64_t count) {
  return std::vector<float>(m.begin() + row * width, m.begin() + (row + count) * width);
}

// ---- shapes ---------------------------------------------------------------

struct ShapeCase {
  std::string name;
  AttentionDims dims;
};

std::vector<ShapeCase> Shapes() {
  return {
      {"mistral", {32, 8, 8, 128, 128}},          // Mistral-SUPRA: GQA, F = Dv = 128
      {"mistral_qknorm", {32, 32, 8, 128, 128}},  // qk norm: every query head has its own key
      {"mha", {4, 4, 4, 8, 8}},
      {"qknorm_small", {4, 4, 2, 8, 8}},
      {"gqa_dv12", {4, 2, 2, 8, 12}},  // bf16 pool takes the scalar path (Dv % 8 != 0)
      {"h32_tiny", {32, 8, 8, 4, 4}},
      {"odd", {6, 3, 3, 6, 5}},              // F % 4 != 0, odd Dv: scalar paths everywhere
      {"dv40_f12_hkv1", {4, 2, 1, 12, 40}},  // two Dv tiles, the second partly used
      {"dv96", {8, 8, 8, 128, 96}},          // three fp32 tiles, two bf16 tiles (half used)
      {"dv256", {4, 2, 2, 64, 256}},         // the largest Dv: 8-block clusters
  };
}

std::string ShapeName(const ::testing::TestParamInfo<ShapeCase>& info) { return info.param.name; }

// gtest prints parameters of failed tests by their name, not their bytes.
void PrintTo(const ShapeCase& shape, std::ostream* os) { *os << shape.name; }

// The prefill shapes: the decode ones plus feature counts that are not a
// multiple of 8 or 16 (the tensor-core kernel pads F to 16 with zeros).
std::vector<ShapeCase> ChunkedShapes() {
  std::vector<ShapeCase> shapes = Shapes();
  shapes.push_back({"f20_dv64", {8, 4, 4, 20, 64}});      // F % 16 == 4: vector loads, zero padding to 32
  shapes.push_back({"f100_dv128", {4, 2, 2, 100, 128}});  // F % 8 == 4, full Dv tiles
  shapes.push_back({"f33_dv72", {4, 4, 2, 33, 72}});      // odd F (scalar loads), Dv % 32 == 8
  return shapes;
}

// ---- decode ---------------------------------------------------------------

template <typename StateT>
void RunDecodeParity(const AttentionDims& d, const PoolSpec& spec, const std::vector<int32_t>& slots, uint32_t seed) {
  const int n = static_cast<int>(slots.size());
  const int64_t elems = StateElems(d), hdv = int64_t{d.heads} * d.value_dim;
  const Inputs in = MakeInputs(d, n, seed);
  const std::vector<float> gammas = Gammas(d.heads);
  const std::vector<float> pool =
      MakeStates(static_cast<size_t>(spec.slots) * spec.layers * elems, seed + 1, kIsBf16<StateT>);

  std::vector<float> want_pool = pool;
  std::vector<float*> states(n);
  std::vector<int64_t> touched(n);
  for (int i = 0; i < n; ++i) {
    touched[i] = int64_t{slots[i]} * spec.layers + spec.layer;
    states[i] = want_pool.data() + touched[i] * elems;
  }
  std::vector<float> want_out(n * hdv);
  cpu::RecurrentAttention(
      CpuShape(d), cpu::ConstMatrix{in.q.data(), n, int64_t{d.heads} * d.features, int64_t{d.heads} * d.features},
      cpu::ConstMatrix{in.k.data(), n, int64_t{d.key_heads} * d.features, int64_t{d.key_heads} * d.features},
      cpu::ConstMatrix{in.v.data() + in.v_offset, n, int64_t{d.value_heads} * d.value_dim, in.v_stride}, gammas, states,
      cpu::Matrix{want_out.data(), n, hdv, hdv}, CpuPool());
  cpu::GroupNorm(cpu::Matrix{want_out.data(), n, hdv, hdv}, d.value_dim, kGroupNormEpsD, CpuPool());

  const auto q = Upload(in.q);
  const auto k = Upload(in.k);
  const auto v = UploadBf16(in.v);
  const auto g = Upload(gammas);
  const auto s = Upload(slots);
  auto pool_d = UploadState<StateT>(pool);
  auto out = PoisonedBuffer<__nv_bfloat16>(n * hdv);
  const absl::Status status = LaunchRecurrentAttention(
      d, q.data(), k.data(), v.data() + in.v_offset, in.v_stride, g.data(), s.data(), n,
      StatePoolLayer<StateT>{pool_d.data(), spec.slots, spec.layers, spec.layer}, out.data(), nullptr);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_LE(RelativeMaxError(DownloadBf16(out), want_out), kOutputTolerance);
  ExpectPoolMatches<StateT>(DownloadState(pool_d), want_pool, elems, touched);
}

class CudaRecurrentAttentionTest : public ::testing::TestWithParam<ShapeCase> {};

// Unordered slots with gaps, several at or above 128, in layer 1 of 2.
const std::vector<int32_t> kDecodeSlots = {131, 7, 0, 129, 64, 128, 12};
constexpr PoolSpec kSmallPool{132, 2, 1};

TEST_P(CudaRecurrentAttentionTest, MatchesCpuWithF32State) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunDecodeParity<float>(GetParam().dims, kSmallPool, kDecodeSlots, 11);
}

TEST_P(CudaRecurrentAttentionTest, MatchesCpuWithBf16State) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunDecodeParity<__nv_bfloat16>(GetParam().dims, kSmallPool, kDecodeSlots, 12);
}

TEST_P(CudaRecurrentAttentionTest, SingleSequence) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunDecodeParity<float>(GetParam().dims, PoolSpec{3, 3, 2}, {2}, 13);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaRecurrentAttentionTest, ::testing::ValuesIn(Shapes()), ShapeName);

TEST(CudaRecurrentAttentionBatchTest, MistralBatch256F32) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunDecodeParity<float>(Shapes()[0].dims, PoolSpec{300, 1, 0}, ShuffledSlots(256, 300, 3), 21);
}

TEST(CudaRecurrentAttentionBatchTest, MistralBatch256Bf16) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunDecodeParity<__nv_bfloat16>(Shapes()[0].dims, PoolSpec{300, 1, 0}, ShuffledSlots(256, 300, 4), 22);
}

TEST(CudaRecurrentAttentionBatchTest, SmallShapeSlotsUpTo299) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunDecodeParity<float>(AttentionDims{4, 2, 2, 8, 8}, PoolSpec{300, 3, 1}, {299, 128, 5, 200, 131, 256, 0}, 23);
}

// Slots outside the pool are skipped: neither the state nor the output is touched.
TEST(CudaRecurrentAttentionBatchTest, SkipsSlotsOutsideThePool) {
  SUPRA_SKIP_WITHOUT_GPU();
  const AttentionDims d{4, 2, 2, 8, 8};
  const Inputs in = MakeInputs(d, 2, 5);
  const std::vector<float> pool = MakeStates(4 * StateElems(d), 6, false);
  const auto q = Upload(in.q);
  const auto k = Upload(in.k);
  const auto v = UploadBf16(in.v);
  const auto g = Upload(Gammas(d.heads));
  const auto s = Upload(std::vector<int32_t>{4, -1});
  auto pool_d = Upload(pool);
  auto out = PoisonedBuffer<__nv_bfloat16>(2 * d.heads * d.value_dim);
  ASSERT_TRUE(LaunchRecurrentAttention(d, q.data(), k.data(), v.data() + in.v_offset, in.v_stride, g.data(), s.data(),
                                       2, StatePoolLayer<float>{pool_d.data(), 4, 1, 0}, out.data(), nullptr)
                  .ok());
  for (float x : DownloadBf16(out)) EXPECT_TRUE(std::isnan(x));
  EXPECT_EQ(Download(pool_d), pool);
}

// ---- prefill --------------------------------------------------------------

struct ChunkSpec {
  int length = 0;
  int32_t slot = 0;
  int gap_before = 0;  // rows no chunk covers, before this chunk
};

// The two-pass kernels' workspace for a launch of `rows` rows (`partials`
// partial sub-chunks more), or none.
struct WorkspaceSpec {
  bool enabled = true;
  int max_rows = -1;  // -1: the launch's rows
  int partials = 16;
};

// A workspace for `rows` rows when `kernel` is one that uses it (kTwoPass,
// kAuto), else an empty one (no GPU memory).
ChunkedAttentionWorkspace MakeWorkspace(const AttentionDims& d, int rows, ChunkedAttentionKernel kernel,
                                        const WorkspaceSpec& ws = {}) {
  if (!ws.enabled || (kernel != ChunkedAttentionKernel::kTwoPass && kernel != ChunkedAttentionKernel::kAuto)) {
    return ChunkedAttentionWorkspace{};
  }
  auto workspace = ChunkedAttentionWorkspace::Create(d, ws.max_rows >= 0 ? ws.max_rows : rows, ws.partials);
  EXPECT_TRUE(workspace.ok()) << workspace.status();
  return workspace.ok() ? *std::move(workspace) : ChunkedAttentionWorkspace{};
}

// Prefill in one launch against the CPU. With `shuffle`, the descriptors
// are passed in a scrambled order (rows still as `specs` lay them out).
template <typename StateT>
void RunChunkedParity(const AttentionDims& d, const PoolSpec& spec, const std::vector<ChunkSpec>& specs, uint32_t seed,
                      ChunkedAttentionKernel kernel, bool aligned_v = false, const WorkspaceSpec& ws = {},
                      bool shuffle = false) {
  const int64_t elems = StateElems(d), hdv = int64_t{d.heads} * d.value_dim;
  std::vector<AttentionChunkDesc> descs;
  std::vector<bool> covered;
  int rows = 0;
  for (const ChunkSpec& c : specs) {
    covered.insert(covered.end(), c.gap_before, false);
    rows += c.gap_before;
    descs.push_back(AttentionChunkDesc{rows, c.length, c.slot});
    covered.insert(covered.end(), c.length, true);
    rows += c.length;
  }
  if (shuffle) std::shuffle(descs.begin(), descs.end(), std::mt19937(seed));
  const Inputs in = MakeInputs(d, rows, seed, aligned_v);
  const std::vector<float> gammas = Gammas(d.heads);
  const std::vector<float> pool =
      MakeStates(static_cast<size_t>(spec.slots) * spec.layers * elems, seed + 1, kIsBf16<StateT>);

  std::vector<float> want_pool = pool;
  std::vector<cpu::AttentionChunk> chunks;
  std::vector<int64_t> touched;
  for (const AttentionChunkDesc& c : descs) {
    touched.push_back(int64_t{c.slot} * spec.layers + spec.layer);
    chunks.push_back(cpu::AttentionChunk{c.row_begin, c.length, want_pool.data() + touched.back() * elems});
  }
  std::vector<float> want_out(rows * hdv, 0.0f);
  cpu::ChunkedAttention(
      CpuShape(d), cpu::ConstMatrix{in.q.data(), rows, int64_t{d.heads} * d.features, int64_t{d.heads} * d.features},
      cpu::ConstMatrix{in.k.data(), rows, int64_t{d.key_heads} * d.features, int64_t{d.key_heads} * d.features},
      cpu::ConstMatrix{in.v.data() + in.v_offset, rows, int64_t{d.value_heads} * d.value_dim, in.v_stride}, gammas,
      chunks, cpu::Matrix{want_out.data(), rows, hdv, hdv}, CpuPool());
  cpu::GroupNorm(cpu::Matrix{want_out.data(), rows, hdv, hdv}, d.value_dim, kGroupNormEpsD, CpuPool());

  const auto q = Upload(in.q);
  const auto k = Upload(in.k);
  const auto v = UploadBf16(in.v);
  const auto g = Upload(gammas);
  const auto c = Upload(descs);
  auto pool_d = UploadState<StateT>(pool);
  auto out = PoisonedBuffer<__nv_bfloat16>(rows * hdv);
  ChunkedAttentionWorkspace workspace = MakeWorkspace(d, rows, kernel, ws);
  const absl::Status status = LaunchChunkedAttention(
      d, q.data(), k.data(), v.data() + in.v_offset, in.v_stride, g.data(), c.data(), static_cast<int>(descs.size()),
      rows, StatePoolLayer<StateT>{pool_d.data(), spec.slots, spec.layers, spec.layer}, out.data(), nullptr, kernel,
      ws.enabled ? &workspace : nullptr, descs.data());
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> got_out = DownloadBf16(out);
  std::vector<float> got_covered, want_covered;
  int64_t written_gaps = 0;
  for (int r = 0; r < rows; ++r) {
    if (covered[r]) {
      const std::vector<float> a = RowsOf(got_out, hdv, r, 1), b = RowsOf(want_out, hdv, r, 1);
      got_covered.insert(got_covered.end(), a.begin(), a.end());
      want_covered.insert(want_covered.end(), b.begin(), b.end());
    } else {
      for (int64_t i = 0; i < hdv; ++i) written_gaps += !std::isnan(got_out[r * hdv + i]);
    }
  }
  EXPECT_LE(RelativeMaxError(got_covered, want_covered), kOutputTolerance);
  EXPECT_EQ(written_gaps, 0) << "rows outside every chunk were written";
  ExpectPoolMatches<StateT>(DownloadState(pool_d), want_pool, elems, touched);
}

// Parameters: a shape and the kernel (SIMT, or two-pass with a workspace for
// the launch) run explicitly.
using ChunkedCase = std::tuple<ShapeCase, ChunkedAttentionKernel>;

class CudaChunkedAttentionTest : public ::testing::TestWithParam<ChunkedCase> {
 protected:
  const AttentionDims& dims() const { return std::get<0>(GetParam()).dims; }
  ChunkedAttentionKernel kernel() const { return std::get<1>(GetParam()); }
};

std::string KernelName(ChunkedAttentionKernel kernel) {
  switch (kernel) {
    case ChunkedAttentionKernel::kAuto:
      return "auto";
    case ChunkedAttentionKernel::kSimt:
      return "simt";
    case ChunkedAttentionKernel::kTwoPass:
      return "two_pass";
  }
  return "unknown";
}

std::string ChunkedCaseName(const ::testing::TestParamInfo<ChunkedCase>& info) {
  return std::get<0>(info.param).name + "_" + KernelName(std::get<1>(info.param));
}

// Lengths 1, 7, 64 (one sub-chunk), 65 (one row more), 130 and 300 (several
// sub-chunks, the last partial) in one launch, unordered slots with gaps and
// at or above 128, two rows between chunks that no chunk covers.
const std::vector<ChunkSpec> kChunks = {{1, 131, 0}, {7, 3, 0}, {64, 128, 2}, {65, 0, 0}, {130, 77, 0}, {300, 129, 1}};

TEST_P(CudaChunkedAttentionTest, MatchesCpuWithF32State) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunChunkedParity<float>(dims(), kSmallPool, kChunks, 31, kernel());
}

TEST_P(CudaChunkedAttentionTest, MatchesCpuWithBf16State) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunChunkedParity<__nv_bfloat16>(dims(), kSmallPool, kChunks, 32, kernel());
}

TEST_P(CudaChunkedAttentionTest, SingleRowChunks) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunChunkedParity<float>(dims(), PoolSpec{5, 2, 0}, {{1, 4, 0}, {1, 0, 0}, {1, 2, 0}}, 33, kernel());
}

// v at a 16-byte aligned offset and stride (the backend's layout: the
// kernels' vector loads of V where Dv % 8 == 0), lengths around the
// sub-chunk size (63, 64, 65, 127, 128, 129, 193: up to four sub-chunks, the
// last one row long), both state dtypes.
const std::vector<ChunkSpec> kChunksAroundSubChunks = {{63, 2, 0},   {64, 9, 0},   {65, 130, 3}, {127, 5, 0},
                                                       {128, 64, 0}, {129, 11, 1}, {193, 1, 0}};

TEST_P(CudaChunkedAttentionTest, MatchesCpuWithAlignedValuesF32State) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunChunkedParity<float>(dims(), kSmallPool, kChunksAroundSubChunks, 34, kernel(), /*aligned_v=*/true);
}

TEST_P(CudaChunkedAttentionTest, MatchesCpuWithAlignedValuesBf16State) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunChunkedParity<__nv_bfloat16>(dims(), kSmallPool, kChunksAroundSubChunks, 35, kernel(), /*aligned_v=*/true);
}

// A prompt prefilled over several launches (chunk rounds, the state carried
// in the pool) against the same tokens decoded one at a time on the GPU, both
// from the same initial states: outputs and final states agree.
TEST_P(CudaChunkedAttentionTest, MultiRoundPrefillEqualsTokenByTokenDecode) {
  SUPRA_SKIP_WITHOUT_GPU();
  const AttentionDims d = dims();
  const int64_t hdv = int64_t{d.heads} * d.value_dim;
  const PoolSpec spec = kSmallPool;
  struct Sequence {
    int32_t slot;
    std::vector<int> rounds;  // chunk length per round, 0: not in that round
  };
  const std::vector<Sequence> seqs = {{130, {1, 64, 85, 0}}, {4, {7, 0, 63, 2}}, {66, {9, 1, 0, 0}}};
  const size_t num_rounds = 4;
  std::vector<Inputs> inputs;
  for (size_t s = 0; s < seqs.size(); ++s) {
    int total = 0;
    for (int len : seqs[s].rounds) total += len;
    inputs.push_back(MakeInputs(d, total, 40 + static_cast<uint32_t>(s)));
  }
  const std::vector<float> pool = MakeStates(static_cast<size_t>(spec.slots) * spec.layers * StateElems(d), 45, false);
  const auto g = Upload(Gammas(d.heads));
  const StatePoolLayer<float> view{nullptr, spec.slots, spec.layers, spec.layer};

  // Chunk rounds.
  auto pool_chunked = Upload(pool);
  std::vector<std::vector<float>> out_chunked(seqs.size());
  std::vector<int> next(seqs.size(), 0);
  for (size_t r = 0; r < num_rounds; ++r) {
    Inputs batch = EmptyInputs(d);
    std::vector<AttentionChunkDesc> descs;
    std::vector<size_t> owner;
    for (size_t s = 0; s < seqs.size(); ++s) {
      const int len = seqs[s].rounds[r];
      if (len == 0) continue;
      descs.push_back(AttentionChunkDesc{batch.rows, len, seqs[s].slot});
      owner.push_back(s);
      for (int t = 0; t < len; ++t) AppendRow(inputs[s], next[s] + t, batch);
      next[s] += len;
    }
    const auto q = Upload(batch.q);
    const auto k = Upload(batch.k);
    const auto v = UploadBf16(batch.v);
    const auto c = Upload(descs);
    auto out = PoisonedBuffer<__nv_bfloat16>(batch.rows * hdv);
    StatePoolLayer<float> layer = view;
    layer.data = pool_chunked.data();
    ChunkedAttentionWorkspace workspace = MakeWorkspace(d, batch.rows, kernel());
    ASSERT_TRUE(LaunchChunkedAttention(d, q.data(), k.data(), v.data() + batch.v_offset, batch.v_stride, g.data(),
                                       c.data(), static_cast<int>(descs.size()), batch.rows, layer, out.data(), nullptr,
                                       kernel(), &workspace, descs.data())
                    .ok());
    const std::vector<float> got = DownloadBf16(out);
    for (size_t i = 0; i < descs.size(); ++i) {
      const std::vector<float> rows = RowsOf(got, hdv, descs[i].row_begin, descs[i].length);
      out_chunked[owner[i]].insert(out_chunked[owner[i]].end(), rows.begin(), rows.end());
    }
  }

  // Token by token.
  auto pool_decode = Upload(pool);
  std::vector<std::vector<float>> out_decode(seqs.size());
  for (int t = 0;; ++t) {
    Inputs batch = EmptyInputs(d);
    std::vector<int32_t> slots;
    std::vector<size_t> owner;
    for (size_t s = 0; s < seqs.size(); ++s) {
      if (t >= inputs[s].rows) continue;
      AppendRow(inputs[s], t, batch);
      slots.push_back(seqs[s].slot);
      owner.push_back(s);
    }
    if (slots.empty()) break;
    const int n = static_cast<int>(slots.size());
    const auto q = Upload(batch.q);
    const auto k = Upload(batch.k);
    const auto v = UploadBf16(batch.v);
    const auto sl = Upload(slots);
    auto out = PoisonedBuffer<__nv_bfloat16>(n * hdv);
    StatePoolLayer<float> layer = view;
    layer.data = pool_decode.data();
    ASSERT_TRUE(LaunchRecurrentAttention(d, q.data(), k.data(), v.data() + batch.v_offset, batch.v_stride, g.data(),
                                         sl.data(), n, layer, out.data(), nullptr)
                    .ok());
    const std::vector<float> got = DownloadBf16(out);
    for (int i = 0; i < n; ++i) {
      const std::vector<float> row = RowsOf(got, hdv, i, 1);
      out_decode[owner[i]].insert(out_decode[owner[i]].end(), row.begin(), row.end());
    }
  }

  for (size_t s = 0; s < seqs.size(); ++s) {
    EXPECT_LE(RelativeMaxError(out_chunked[s], out_decode[s]), kOutputTolerance) << "sequence " << s;
  }
  EXPECT_LE(RelativeMaxError(Download(pool_chunked), Download(pool_decode)), kStateF32Tolerance);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaChunkedAttentionTest,
                         ::testing::Combine(::testing::ValuesIn(ChunkedShapes()),
                                            ::testing::Values(ChunkedAttentionKernel::kSimt,
                                                              ChunkedAttentionKernel::kTwoPass)),
                         ChunkedCaseName);

// ---- two-pass kernels: packing, fallbacks, descriptor order ----------------

// Lengths not aligned to 64 (partial sub-chunks at every chunk's end, one
// chunk of a single row), descriptors in a scrambled order, gaps between
// chunks; two-pass explicitly and through kAuto (the launch fits).
const std::vector<ChunkSpec> kRaggedChunks = {{200, 7, 0},   {37, 130, 1}, {129, 0, 0}, {1, 64, 0},
                                              {450, 129, 3}, {77, 12, 0},  {64, 5, 0}};

TEST(CudaChunkedAttentionTwoPassTest, RaggedShuffledChunksMistralF32) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunChunkedParity<float>(Shapes()[0].dims, kSmallPool, kRaggedChunks, 71, ChunkedAttentionKernel::kTwoPass,
                          /*aligned_v=*/true, {}, /*shuffle=*/true);
}

TEST(CudaChunkedAttentionTwoPassTest, RaggedShuffledChunksMistralBf16Auto) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunChunkedParity<__nv_bfloat16>(Shapes()[0].dims, kSmallPool, kRaggedChunks, 72, ChunkedAttentionKernel::kAuto,
                                  /*aligned_v=*/true, {}, /*shuffle=*/true);
}

TEST(CudaChunkedAttentionTwoPassTest, RaggedShuffledChunksOddShape) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunChunkedParity<float>(AttentionDims{4, 4, 2, 33, 72}, kSmallPool, kRaggedChunks, 73,
                          ChunkedAttentionKernel::kTwoPass, /*aligned_v=*/false, {}, /*shuffle=*/true);
}

// A workspace of 4 sub-chunks (256 rows, no partials) and 40 short chunks
// (1..70 rows: 43 sub-chunks) forces many internal launches; one chunk of
// 300 rows (5 sub-chunks) does not fit at all and runs on the SIMT kernel
// between them.
std::vector<ChunkSpec> ManyShortChunks() {
  std::vector<ChunkSpec> specs;
  for (int i = 0; i < 40; ++i) {
    specs.push_back({1 + (i * 37) % 70, static_cast<int32_t>((i * 53) % 132), i % 3 == 0 ? 1 : 0});
    if (i == 17) specs.push_back({300, 131, 0});
  }
  return specs;  // slots (i·53) mod 132 for i < 40 are distinct, 131 not among them
}

TEST(CudaChunkedAttentionTwoPassTest, ManyShortChunksOverflowASmallWorkspace) {
  SUPRA_SKIP_WITHOUT_GPU();
  const WorkspaceSpec small{true, 256, 0};
  RunChunkedParity<float>(Shapes()[0].dims, kSmallPool, ManyShortChunks(), 74, ChunkedAttentionKernel::kTwoPass,
                          /*aligned_v=*/true, small, /*shuffle=*/true);
  RunChunkedParity<__nv_bfloat16>(AttentionDims{4, 2, 2, 8, 12}, kSmallPool, ManyShortChunks(), 75,
                                  ChunkedAttentionKernel::kTwoPass, /*aligned_v=*/false, small);
}

// kAuto with a workspace too small for the launch: the SIMT kernel, same
// results.
TEST(CudaChunkedAttentionTwoPassTest, AutoFallsBackWhenTheLaunchDoesNotFit) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunChunkedParity<float>(Shapes()[0].dims, kSmallPool, ManyShortChunks(), 76, ChunkedAttentionKernel::kAuto,
                          /*aligned_v=*/true, WorkspaceSpec{true, 256, 0});
}

// No workspace: kTwoPass runs on the SIMT kernel.
TEST(CudaChunkedAttentionTwoPassTest, NoWorkspaceFallsBack) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunChunkedParity<float>(AttentionDims{4, 2, 2, 8, 12}, kSmallPool, kChunks, 77, ChunkedAttentionKernel::kTwoPass,
                          /*aligned_v=*/false, WorkspaceSpec{false});
}

// F = 128 with Dv = 256, the widest shape: pass 2 with four column tiles per
// warp and F fixed at 128 (about 150 KiB of shared memory, one block per SM).
TEST(CudaChunkedAttentionTwoPassTest, WidestShapeF128Dv256) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunChunkedParity<float>(AttentionDims{2, 2, 2, 128, 256}, kSmallPool, kChunks, 78, ChunkedAttentionKernel::kTwoPass);
}

// Pass 2's shared memory (no GPU needed): two blocks per SM at
// Mistral-SUPRA's F = Dv = 128 (228 KiB per SM, 1 KiB of it reserved per
// block), and every shape the launcher accepts within the 227 KiB a block
// may opt in to, so the two-pass kernels take them all.
TEST(CudaChunkedAttentionTwoPassLayoutTest, Pass2SharedMemory) {
  EXPECT_LE(attention_internal::ChunkedAttentionOutputsSmemBytes(AttentionDims{32, 8, 8, 128, 128}), 113u * 1024);
  for (const AttentionDims& d : {AttentionDims{32, 8, 8, 128, 128}, AttentionDims{2, 2, 2, 128, 256},
                                 AttentionDims{4, 2, 2, 64, 256}, AttentionDims{6, 3, 3, 6, 5}}) {
    EXPECT_LE(attention_internal::ChunkedAttentionOutputsSmemBytes(d), 227u * 1024) << d.features << " " << d.value_dim;
    EXPECT_TRUE(attention_internal::TwoPassSupports(d)) << d.features << " " << d.value_dim;
  }
}

// Two-pass == SIMT at Mistral-SUPRA's shapes, 4 sequences of 600 rows
// (9 full sub-chunks and a partial one each) from random states: outputs
// within the output tolerance, states within the fp32 state tolerance.
TEST(CudaChunkedAttentionTwoPassTest, MatchesSimtMistral4x600) {
  SUPRA_SKIP_WITHOUT_GPU();
  const AttentionDims d = Shapes()[0].dims;
  const int64_t elems = StateElems(d), hdv = int64_t{d.heads} * d.value_dim;
  const int length = 600, sequences = 4, rows = length * sequences;
  const PoolSpec spec{6, 2, 1};
  std::vector<AttentionChunkDesc> descs;
  for (int s = 0; s < sequences; ++s) descs.push_back({s * length, length, 5 - s});
  const Inputs in = MakeInputs(d, rows, 79, /*aligned_v=*/true);
  const std::vector<float> pool = MakeStates(static_cast<size_t>(spec.slots) * spec.layers * elems, 80, false);
  const auto q = Upload(in.q);
  const auto k = Upload(in.k);
  const auto v = UploadBf16(in.v);
  const auto g = Upload(Gammas(d.heads));
  const auto c = Upload(descs);
  auto run = [&](ChunkedAttentionKernel kernel, std::vector<float>& out_host, std::vector<float>& pool_host) {
    auto pool_d = Upload(pool);
    auto out = PoisonedBuffer<__nv_bfloat16>(rows * hdv);
    ChunkedAttentionWorkspace workspace = MakeWorkspace(d, rows, kernel);
    ASSERT_TRUE(LaunchChunkedAttention(d, q.data(), k.data(), v.data() + in.v_offset, in.v_stride, g.data(), c.data(),
                                       sequences, rows,
                                       StatePoolLayer<float>{pool_d.data(), spec.slots, spec.layers, spec.layer},
                                       out.data(), nullptr, kernel, &workspace, descs.data())
                    .ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    out_host = DownloadBf16(out);
    pool_host = Download(pool_d);
  };
  std::vector<float> out_simt, pool_simt, out_two, pool_two;
  run(ChunkedAttentionKernel::kSimt, out_simt, pool_simt);
  run(ChunkedAttentionKernel::kTwoPass, out_two, pool_two);
  EXPECT_LE(RelativeMaxError(out_two, out_simt), kOutputTolerance);
  EXPECT_LE(RelativeMaxError(pool_two, pool_simt), kStateF32Tolerance);
}

// ---- Mistral-SUPRA-sized pool with slots >= 128 (64-bit offsets) -----------

// A pool [130, 32, 32, 128, 128] (8.7 GB in fp32, 4.4 GB in bf16): the state
// of slot 128 at layer 31 starts at element 2^31 + 31·2^19. Only the blocks
// the test touches are initialised and read back, plus untouched neighbours
// that must stay as they were.
template <typename StateT>
void RunLargeSlots() {
  const AttentionDims d{32, 8, 8, 128, 128};
  const PoolSpec spec{130, 32, 31};
  const int64_t elems = StateElems(d), hdv = int64_t{d.heads} * d.value_dim;
  const size_t pool_bytes = static_cast<size_t>(spec.slots) * spec.layers * elems * sizeof(StateT);
  size_t free_bytes = 0, total_bytes = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total_bytes), cudaSuccess);
  if (free_bytes < pool_bytes + (size_t{1} << 30)) GTEST_SKIP() << "needs " << pool_bytes << " bytes of GPU memory";
  auto pool_d = DeviceBuffer<StateT>::Allocate(static_cast<size_t>(spec.slots) * spec.layers * elems, "test pool");
  ASSERT_TRUE(pool_d.ok()) << pool_d.status();

  const std::vector<int32_t> slots = {129, 5, 128};
  // Blocks (slot · layers + layer) kept on the host: the sequences' states at
  // layer 31, then the neighbours at layer 30 and of slot 127.
  const std::vector<int64_t> blocks = {129 * 32 + 31, 5 * 32 + 31, 128 * 32 + 31, 129 * 32 + 30, 127 * 32 + 31};
  const std::vector<int64_t> touched = {0, 1, 2};  // indices into `blocks`
  const std::vector<float> initial = MakeStates(blocks.size() * elems, 51, kIsBf16<StateT>);
  auto upload_blocks = [&](const std::vector<float>& host) {
    for (size_t b = 0; b < blocks.size(); ++b) {
      const std::vector<float> part(host.begin() + b * elems, host.begin() + (b + 1) * elems);
      const DeviceBuffer<StateT> staged = UploadState<StateT>(part);
      ASSERT_EQ(cudaMemcpy(pool_d->data() + blocks[b] * elems, staged.data(), elems * sizeof(StateT),
                           cudaMemcpyDeviceToDevice),
                cudaSuccess);
    }
  };
  auto download_blocks = [&]() {
    std::vector<float> host;
    for (size_t b = 0; b < blocks.size(); ++b) {
      auto staged = DeviceBuffer<StateT>::Allocate(elems, "test staging");
      EXPECT_TRUE(staged.ok());
      EXPECT_EQ(cudaMemcpy(staged->data(), pool_d->data() + blocks[b] * elems, elems * sizeof(StateT),
                           cudaMemcpyDeviceToDevice),
                cudaSuccess);
      const std::vector<float> part = DownloadState(*staged);
      host.insert(host.end(), part.begin(), part.end());
    }
    return host;
  };
  const std::vector<float> gammas = Gammas(d.heads);
  const auto g = Upload(gammas);
  const StatePoolLayer<StateT> layer{pool_d->data(), spec.slots, spec.layers, spec.layer};

  {  // decode
    upload_blocks(initial);
    const int n = 3;
    const Inputs in = MakeInputs(d, n, 52);
    std::vector<float> want = initial;
    std::vector<float*> states = {want.data(), want.data() + elems, want.data() + 2 * elems};
    std::vector<float> want_out(n * hdv);
    cpu::RecurrentAttention(CpuShape(d), cpu::ConstMatrix{in.q.data(), n, 4096, 4096},
                            cpu::ConstMatrix{in.k.data(), n, 1024, 1024},
                            cpu::ConstMatrix{in.v.data() + in.v_offset, n, 1024, in.v_stride}, gammas, states,
                            cpu::Matrix{want_out.data(), n, hdv, hdv}, CpuPool());
    cpu::GroupNorm(cpu::Matrix{want_out.data(), n, hdv, hdv}, d.value_dim, kGroupNormEpsD, CpuPool());
    const auto q = Upload(in.q);
    const auto k = Upload(in.k);
    const auto v = UploadBf16(in.v);
    const auto s = Upload(slots);
    auto out = PoisonedBuffer<__nv_bfloat16>(n * hdv);
    ASSERT_TRUE(LaunchRecurrentAttention(d, q.data(), k.data(), v.data() + in.v_offset, in.v_stride, g.data(), s.data(),
                                         n, layer, out.data(), nullptr)
                    .ok());
    EXPECT_LE(RelativeMaxError(DownloadBf16(out), want_out), kOutputTolerance);
    ExpectPoolMatches<StateT>(download_blocks(), want, elems, touched);
  }
  {  // prefill
    upload_blocks(initial);
    const std::vector<int> lengths = {100, 3, 64};
    const Inputs in = MakeInputs(d, 167, 53);
    std::vector<float> want = initial;
    std::vector<AttentionChunkDesc> descs;
    std::vector<cpu::AttentionChunk> chunks;
    int row = 0;
    for (int i = 0; i < 3; ++i) {
      descs.push_back(AttentionChunkDesc{row, lengths[i], slots[i]});
      chunks.push_back(cpu::AttentionChunk{row, lengths[i], want.data() + i * elems});
      row += lengths[i];
    }
    std::vector<float> want_out(row * hdv);
    cpu::ChunkedAttention(CpuShape(d), cpu::ConstMatrix{in.q.data(), row, 4096, 4096},
                          cpu::ConstMatrix{in.k.data(), row, 1024, 1024},
                          cpu::ConstMatrix{in.v.data() + in.v_offset, row, 1024, in.v_stride}, gammas, chunks,
                          cpu::Matrix{want_out.data(), row, hdv, hdv}, CpuPool());
    cpu::GroupNorm(cpu::Matrix{want_out.data(), row, hdv, hdv}, d.value_dim, kGroupNormEpsD, CpuPool());
    const auto q = Upload(in.q);
    const auto k = Upload(in.k);
    const auto v = UploadBf16(in.v);
    const auto c = Upload(descs);
    auto out = PoisonedBuffer<__nv_bfloat16>(row * hdv);
    // kAuto with a workspace: the two-pass kernels.
    ChunkedAttentionWorkspace workspace = MakeWorkspace(d, row, ChunkedAttentionKernel::kAuto);
    ASSERT_TRUE(LaunchChunkedAttention(d, q.data(), k.data(), v.data() + in.v_offset, in.v_stride, g.data(), c.data(),
                                       3, row, layer, out.data(), nullptr, ChunkedAttentionKernel::kAuto, &workspace,
                                       descs.data())
                    .ok());
    EXPECT_LE(RelativeMaxError(DownloadBf16(out), want_out), kOutputTolerance);
    ExpectPoolMatches<StateT>(download_blocks(), want, elems, touched);
  }
}

TEST(CudaAttentionLargePoolTest, MistralSlotsAbove128F32) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunLargeSlots<float>();
}

TEST(CudaAttentionLargePoolTest, MistralSlotsAbove128Bf16) {
  SUPRA_SKIP_WITHOUT_GPU();
  RunLargeSlots<__nv_bfloat16>();
}

// ---- bad arguments (no GPU needed: refused before any CUDA call) ----------

template <typename T>
T* Fake() {
  return reinterpret_cast<T*>(uintptr_t{4096});
}

absl::StatusCode DecodeCode(const AttentionDims& d, int n, int64_t v_stride, StatePoolLayer<float> pool,
                            const float* q = Fake<float>()) {
  return LaunchRecurrentAttention(d, q, Fake<float>(), Fake<__nv_bfloat16>(), v_stride, Fake<float>(), Fake<int32_t>(),
                                  n, pool, Fake<__nv_bfloat16>(), nullptr)
      .code();
}

TEST(CudaRecurrentAttentionArgsTest, RefusesBadArguments) {
  const AttentionDims ok{4, 2, 2, 8, 8};
  const StatePoolLayer<float> pool{Fake<float>(), 4, 2, 1};
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(DecodeCode(AttentionDims{4, 2, 2, 8, 257}, 1, 64, pool), kInvalid);  // Dv above 256
  EXPECT_EQ(DecodeCode(AttentionDims{4, 3, 2, 8, 8}, 1, 64, pool), kInvalid);    // H % Hk != 0
  EXPECT_EQ(DecodeCode(AttentionDims{4, 2, 3, 8, 8}, 1, 64, pool), kInvalid);    // H % Hkv != 0
  EXPECT_EQ(DecodeCode(AttentionDims{4, 2, 2, 0, 8}, 1, 64, pool), kInvalid);    // F = 0
  EXPECT_EQ(DecodeCode(ok, -1, 64, pool), kInvalid);
  EXPECT_EQ(DecodeCode(ok, 65536, 64, pool), kInvalid);
  EXPECT_EQ(DecodeCode(ok, 1, 15, pool), kInvalid);  // v stride below Hkv·Dv = 16
  EXPECT_EQ(DecodeCode(ok, 1, 64, StatePoolLayer<float>{Fake<float>(), 4, 2, 2}), kInvalid);  // layer >= layers
  EXPECT_EQ(DecodeCode(ok, 1, 64, StatePoolLayer<float>{Fake<float>(), 0, 2, 1}), kInvalid);  // no slots
  EXPECT_EQ(DecodeCode(ok, 1, 64, StatePoolLayer<float>{nullptr, 4, 2, 1}), kInvalid);
  EXPECT_EQ(DecodeCode(ok, 1, 64, pool, nullptr), kInvalid);
  // Nothing to do: no launch, null pointers allowed.
  EXPECT_TRUE(LaunchRecurrentAttention(ok, nullptr, nullptr, nullptr, 64, nullptr, nullptr, 0,
                                       StatePoolLayer<float>{nullptr, 4, 2, 1}, nullptr, nullptr)
                  .ok());
}

// With an (empty) workspace and host descriptors for kTwoPass and kAuto:
// the arguments are refused before either is used.
absl::StatusCode PrefillCode(ChunkedAttentionKernel kernel, const AttentionDims& d, int num_chunks, int rows,
                             const AttentionChunkDesc* chunks = Fake<AttentionChunkDesc>()) {
  ChunkedAttentionWorkspace workspace;
  const bool with_workspace = kernel == ChunkedAttentionKernel::kTwoPass || kernel == ChunkedAttentionKernel::kAuto;
  return LaunchChunkedAttention(d, Fake<float>(), Fake<float>(), Fake<__nv_bfloat16>(), 1024, Fake<float>(), chunks,
                                num_chunks, rows, StatePoolLayer<__nv_bfloat16>{Fake<__nv_bfloat16>(), 4, 2, 1},
                                Fake<__nv_bfloat16>(), nullptr, kernel, with_workspace ? &workspace : nullptr,
                                with_workspace ? Fake<AttentionChunkDesc>() : nullptr)
      .code();
}

TEST(CudaChunkedAttentionArgsTest, RefusesBadArguments) {
  const AttentionDims ok{4, 2, 2, 8, 8};
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  for (ChunkedAttentionKernel kernel :
       {ChunkedAttentionKernel::kAuto, ChunkedAttentionKernel::kSimt, ChunkedAttentionKernel::kTwoPass}) {
    SCOPED_TRACE(static_cast<int>(kernel));
    EXPECT_EQ(PrefillCode(kernel, AttentionDims{4, 2, 2, 129, 8}, 1, 10), kInvalid);  // F above 128
    EXPECT_EQ(PrefillCode(kernel, AttentionDims{4, 2, 2, 8, 300}, 1, 10), kInvalid);  // Dv above 256
    EXPECT_EQ(PrefillCode(kernel, ok, -1, 10), kInvalid);
    EXPECT_EQ(PrefillCode(kernel, ok, 65536, 10), kInvalid);
    EXPECT_EQ(PrefillCode(kernel, ok, 1, -1), kInvalid);
    EXPECT_EQ(PrefillCode(kernel, ok, 1, 10, nullptr), kInvalid);
    EXPECT_EQ(PrefillCode(kernel, ok, 0, 10, nullptr), absl::StatusCode::kOk);  // nothing to do
  }
}

// Refused before any allocation (no GPU needed).
TEST(CudaChunkedAttentionArgsTest, WorkspaceRefusesBadArguments) {
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(ChunkedAttentionWorkspace::Create(AttentionDims{0, 1, 1, 8, 8}, 64).status().code(), kInvalid);
  EXPECT_EQ(ChunkedAttentionWorkspace::Create(AttentionDims{4, 2, 2, 129, 8}, 64).status().code(), kInvalid);
  EXPECT_EQ(ChunkedAttentionWorkspace::Create(AttentionDims{4, 2, 2, 8, 300}, 64).status().code(), kInvalid);
  EXPECT_EQ(ChunkedAttentionWorkspace::Create(AttentionDims{4, 2, 2, 8, 8}, -1).status().code(), kInvalid);
  EXPECT_EQ(ChunkedAttentionWorkspace::Create(AttentionDims{4, 2, 2, 8, 8}, 64, -1).status().code(), kInvalid);
  const ChunkedAttentionWorkspace empty;
  EXPECT_EQ(empty.StateCapacity(AttentionDims{4, 2, 2, 8, 8}), 0);
  EXPECT_EQ(empty.bytes(), 0u);
}

// ---- timing (not a test: run with --gtest_also_run_disabled_tests) --------

template <typename F>
double MillisecondsPerCall(F&& call, int iterations) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  call();  // warm-up
  cudaEventRecord(start);
  for (int i = 0; i < iterations; ++i) call();
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / iterations;
}

// The two passes of the two-pass kernel timed apart, for one launch of
// `sequences` chunks of `length` rows (pass 1 includes the prep kernel).
template <typename StateT>
void TimeTwoPassPasses(const AttentionDims& d, const char* name, int sequences, int length, const Inputs& in,
                       const DeviceBuffer<float>& q, const DeviceBuffer<float>& k, const DeviceBuffer<__nv_bfloat16>& v,
                       const DeviceBuffer<float>& g, const DeviceBuffer<AttentionChunkDesc>& chunks,
                       const StatePoolLayer<StateT>& layer, DeviceBuffer<__nv_bfloat16>& out,
                       ChunkedAttentionWorkspace& workspace) {
  namespace ai = attention_internal;
  const int rows = sequences * length;
  const int64_t sub_chunks =
      int64_t{sequences} * ((length + kChunkedAttentionSubChunk - 1) / kChunkedAttentionSubChunk);
  auto states = [&] {
    return ai::LaunchChunkedAttentionStates(d, k.data(), v.data() + in.v_offset, in.v_stride, g.data(), chunks.data(),
                                            sequences, rows, layer, nullptr, workspace, sub_chunks);
  };
  auto outputs = [&] {
    return ai::LaunchChunkedAttentionOutputs(d, q.data(), k.data(), v.data() + in.v_offset, in.v_stride, g.data(),
                                             chunks.data(), sequences, rows, layer.slots,
                                             ai::TwoPassFirstSubChunk(workspace), ai::TwoPassSubChunkChunk(workspace),
                                             workspace.states.data(), sub_chunks, out.data(), nullptr);
  };
  const absl::Status s1 = states();  // also writes the index and states that pass 2 reads
  ASSERT_TRUE(s1.ok()) << s1;
  const absl::Status s2 = outputs();
  ASSERT_TRUE(s2.ok()) << s2;
  const double states_ms = MillisecondsPerCall([&] { (void)states(); }, 5);
  const double outputs_ms = MillisecondsPerCall([&] { (void)outputs(); }, 5);
  const absl::StatusOr<int> blocks = ai::ChunkedAttentionOutputsBlocksPerSm(d);
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  std::printf(
      "prefill %s state, %-24s two pass   : pass 1 (index + states) %8.3f ms, pass 2 (outputs) %8.3f ms, "
      "pass 2: %zu bytes of shared memory, %d blocks per SM\n",
      kIsBf16<StateT> ? "bf16" : "fp32", name, states_ms, outputs_ms, ai::ChunkedAttentionOutputsSmemBytes(d), *blocks);
}

template <typename StateT>
void TimeMistral() {
  const AttentionDims d{32, 8, 8, 128, 128};
  const int64_t elems = StateElems(d);
  const int slots = 256;
  auto pool = DeviceBuffer<StateT>::Allocate(slots * elems, "bench pool");
  ASSERT_TRUE(pool.ok());
  ASSERT_EQ(cudaMemset(pool->data(), 0, pool->bytes()), cudaSuccess);
  const StatePoolLayer<StateT> layer{pool->data(), slots, 1, 0};
  const auto g = Upload(Gammas(d.heads));
  const char* dtype = kIsBf16<StateT> ? "bf16" : "fp32";
  for (int n : {1, 8, 64, 256}) {
    const Inputs in = MakeInputs(d, n, 61);
    const auto q = Upload(in.q);
    const auto k = Upload(in.k);
    const auto v = UploadBf16(in.v);
    const auto s = Upload(ShuffledSlots(n, slots, 62));
    auto out = PoisonedBuffer<__nv_bfloat16>(n * d.heads * d.value_dim);
    const double ms = MillisecondsPerCall(
        [&] {
          (void)LaunchRecurrentAttention(d, q.data(), k.data(), v.data() + in.v_offset, in.v_stride, g.data(), s.data(),
                                         n, layer, out.data(), nullptr);
        },
        50);
    const double bytes = 2.0 * n * elems * sizeof(StateT);
    std::printf("decode %s state, batch %3d: %8.2f us per layer, %7.1f GB/s of state traffic\n", dtype, n, ms * 1e3,
                bytes / (ms * 1e-3) / 1e9);
  }
  struct Plan {
    const char* name;
    int sequences, length, rounds;  // each sequence split into `rounds` consecutive chunks, one launch each
  };
  struct Kernel {
    const char* name;
    ChunkedAttentionKernel kernel;
  };
  for (const Plan& plan : {Plan{"1x2048, one chunk", 1, 2048, 1}, Plan{"1x2048, 32 rounds of 64", 1, 2048, 32},
                           Plan{"8x256, one chunk each", 8, 256, 1}, Plan{"2x2048, one chunk each", 2, 2048, 1},
                           Plan{"8x2048, one chunk each", 8, 2048, 1}}) {
    const int rows = plan.sequences * plan.length;
    const Inputs in = MakeInputs(d, rows, 63, /*aligned_v=*/true);  // the backend's qkv layout
    const auto q = Upload(in.q);
    const auto k = Upload(in.k);
    const auto v = UploadBf16(in.v);
    const int per_round = plan.length / plan.rounds;
    std::vector<DeviceBuffer<AttentionChunkDesc>> rounds;
    std::vector<std::vector<AttentionChunkDesc>> host_rounds;
    for (int r = 0; r < plan.rounds; ++r) {
      std::vector<AttentionChunkDesc> descs;
      for (int s = 0; s < plan.sequences; ++s) descs.push_back({s * plan.length + r * per_round, per_round, s});
      rounds.push_back(Upload(descs));
      host_rounds.push_back(descs);
    }
    auto out = PoisonedBuffer<__nv_bfloat16>(static_cast<size_t>(rows) * d.heads * d.value_dim);
    // Sized as the backend sizes it for a pass of `rows` rows.
    auto workspace = ChunkedAttentionWorkspace::Create(d, rows, 32);
    ASSERT_TRUE(workspace.ok()) << workspace.status();
    double simt_ms = 0;
    for (const Kernel& kernel :
         {Kernel{"simt", ChunkedAttentionKernel::kSimt}, Kernel{"two pass", ChunkedAttentionKernel::kTwoPass}}) {
      const double ms = MillisecondsPerCall(
          [&] {
            for (size_t r = 0; r < rounds.size(); ++r) {
              (void)LaunchChunkedAttention(d, q.data(), k.data(), v.data() + in.v_offset, in.v_stride, g.data(),
                                           rounds[r].data(), plan.sequences, rows, layer, out.data(), nullptr,
                                           kernel.kernel, &*workspace, host_rounds[r].data());
            }
          },
          5);
      if (kernel.kernel == ChunkedAttentionKernel::kSimt) simt_ms = ms;
      const double flops = 2.0 * rows * d.heads * (2.0 * d.features * d.value_dim + 32.0 * (d.features + d.value_dim));
      std::printf(
          "prefill %s state, %-24s %-11s: %8.3f ms per layer, %6.2f ms for 32 layers, %8.0f tokens/s (attention "
          "only), %5.1f TFLOP/s useful, %.2fx the SIMT kernel's speed\n",
          dtype, plan.name, kernel.name, ms, 32 * ms, rows / (32 * ms * 1e-3), flops / (ms * 1e-3) / 1e12,
          simt_ms / ms);
    }
    if (plan.rounds == 1) {
      TimeTwoPassPasses(d, plan.name, plan.sequences, plan.length, in, q, k, v, g, rounds[0], layer, out, *workspace);
    }
  }
}

TEST(CudaAttentionTiming, DISABLED_Mistral) {
  SUPRA_SKIP_WITHOUT_GPU();
  TimeMistral<float>();
  TimeMistral<__nv_bfloat16>();
}

}  // namespace
}  // namespace supra::cuda

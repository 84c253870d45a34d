// The GPU sampler (engine/cuda/sampling.h) against the CPU Sampler and
// LogprobsCalculator on random rows of logits.
//
// Token parity: for each (row, seed, token_index) the GPU must pick the CPU
// Sampler's token. Both compute the same float weights bit for bit; the GPU
// sums them exactly where the CPU rounds float64 sums, so a mismatch is
// allowed only where u lies within 1e-5 of the CDF boundary between the two
// tokens (computed here from the definitions in sampling_params.h, in the
// CPU's draw order), and for at most 0.1% of the draws. Greedy must match
// always. Logprobs: both sides sum the same float terms (the GPU exactly, the CPU in float64)
// and differ by a few float ulps: 1e-5 (times |logprob| when larger than 1).
// The GPU splits a row among a cluster of blocks, more of them for fewer
// rows: a row's token and logprob must not depend on the batch it is in.
#include "engine/cuda/sampling.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/backend.h"
#include "engine/sampling/candidate_set.h"
#include "engine/sampling/fast_exp.h"
#include "engine/sampling/logprobs.h"
#include "engine/sampling/penalties.h"
#include "engine/sampling/philox.h"
#include "engine/sampling/sampler.h"
#include "gtest/gtest.h"
#include "tests/engine/cuda/cuda_test_util.h"
#include "tests/engine/testing/sampling_reference.h"

namespace supra::cuda {
namespace {

using testing::Download;
using testing::Upload;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr double kBoundaryTolerance = 1e-5;
constexpr double kMaxMismatchRate = 1e-3;

enum class LogitKind { kGaussian, kMasked, kQuantized, kUniform, kFlat, kNearFlat, kOutliers };

// LLM-like rows: normal logits of a few scales, half of them with a few
// dominant tokens; or with -inf holes, heavy ties, all equal, nearly flat,
// near-flat as from a model with random weights (sd 0.02: a top-p nucleus of
// most of the vocabulary), or with two far outliers that put every other
// token in one bin of a first histogram over the logit range.
std::vector<float> MakeLogits(int vocab, uint32_t seed, LogitKind kind) {
  std::mt19937 rng(seed);
  const float scales[] = {1.0f, 2.5f, 4.0f};
  std::normal_distribution<float> normal(0.0f, scales[seed % 3]);
  std::vector<float> logits(vocab);
  if (kind == LogitKind::kUniform) {
    std::fill(logits.begin(), logits.end(), 0.25f);
    return logits;
  }
  for (float& l : logits) l = normal(rng);
  if (kind == LogitKind::kFlat) {
    for (float& l : logits) l *= 0.05f;
    return logits;
  }
  if (kind == LogitKind::kNearFlat) {
    std::normal_distribution<float> near_flat(0.0f, 0.02f);
    for (float& l : logits) l = near_flat(rng);
    return logits;
  }
  if (kind == LogitKind::kOutliers) {
    logits[rng() % vocab] = 1e4f;
    logits[rng() % vocab] = -1e4f;
    return logits;
  }
  if (seed % 2 == 0) {
    std::uniform_real_distribution<float> spike(3.0f, 8.0f);
    for (int i = 0; i < 3; ++i) logits[rng() % vocab] += spike(rng);
  }
  if (kind == LogitKind::kMasked) {
    for (int i = 0; i < vocab / 10; ++i) logits[rng() % vocab] = kNegInf;
    logits[rng() % vocab] = 1.0f;  // at least one finite logit
  }
  if (kind == LogitKind::kQuantized) {
    for (float& l : logits) l = std::round(l * 2.0f) / 2.0f;
  }
  return logits;
}

// A history that repeats some of the row's most likely tokens, so that the
// penalties change the outcome.
std::vector<int32_t> MakeHistory(const std::vector<float>& logits, uint32_t seed, int length) {
  const int vocab = static_cast<int>(logits.size());
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  const int top = std::min(vocab, 30);
  std::partial_sort(order.begin(), order.begin() + top, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  std::mt19937 rng(seed);
  std::vector<int32_t> history(length);
  for (int32_t& id : history) id = rng() % 2 ? order[rng() % top] : static_cast<int32_t>(rng() % vocab);
  return history;
}

struct Row {
  std::vector<float> logits;
  SamplingParams params;
  std::vector<int32_t> history;
  int64_t token_index = 0;
};

struct GpuResult {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
};

// Stages the rows through DeviceSampler and samples them in one launch.
GpuResult RunGpu(const std::vector<Row>& rows) {
  GpuResult result;
  const auto n = static_cast<int64_t>(rows.size());
  const auto vocab = static_cast<int64_t>(rows.front().logits.size());
  absl::StatusOr<DeviceSampler> sampler = DeviceSampler::Create(n, vocab);
  EXPECT_TRUE(sampler.ok()) << sampler.status();
  if (!sampler.ok()) return result;
  std::vector<SampleSpec> specs(rows.size());
  std::vector<float> logits;
  logits.reserve(static_cast<size_t>(n * vocab));
  for (size_t r = 0; r < rows.size(); ++r) {
    specs[r] = {rows[r].params, rows[r].token_index, rows[r].history};
    logits.insert(logits.end(), rows[r].logits.begin(), rows[r].logits.end());
  }
  DeviceBuffer<float> device_logits = Upload(logits);
  EXPECT_TRUE(sampler->Stage(specs, nullptr).ok());
  EXPECT_TRUE(sampler->Sample(device_logits.data(), n, vocab, nullptr).ok());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  result.tokens.resize(rows.size());
  result.logprobs.resize(rows.size());
  EXPECT_EQ(cudaMemcpy(result.tokens.data(), sampler->device_tokens(), n * sizeof(int32_t), cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_EQ(cudaMemcpy(result.logprobs.data(), sampler->device_logprobs(), n * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  return result;
}

int32_t CpuToken(const Row& row) {
  Sampler sampler;
  absl::StatusOr<int32_t> token = sampler.Sample(row.logits, row.params, row.history, row.token_index);
  EXPECT_TRUE(token.ok()) << token.status();
  return token.ok() ? *token : -1;
}

// The CDF interval [lo, hi) of every token the draw can pick, in the CPU's
// draw order (id order without top-k, most likely first with it), computed
// from the definitions with the CPU's float weights and long double sums.
struct Interval {
  long double lo = 0, hi = 0;
};

std::map<int32_t, Interval> DrawIntervals(const Row& row) {
  const SamplingParams& p = row.params;
  std::vector<float> l = row.logits;
  EXPECT_TRUE(ApplyPenalties(p, row.history, absl::MakeSpan(l)).ok());
  const int vocab = static_cast<int>(l.size());
  const float max = *std::max_element(l.begin(), l.end());
  const float inv_t = 1.0f / p.temperature;
  std::vector<float> w(vocab);
  for (int i = 0; i < vocab; ++i) w[i] = sampling_internal::ExpNonPositive((l[i] - max) * inv_t);
  std::vector<int32_t> order;
  for (int i = 0; i < vocab; ++i) {
    if (l[i] != kNegInf) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  const bool top_k = p.top_k > 0 && p.top_k < vocab;
  if (top_k && static_cast<int>(order.size()) > p.top_k) order.resize(p.top_k);
  if (p.top_p < 1.0f) {
    long double total = 0;
    for (const int32_t id : order) total += w[id];
    const long double target = static_cast<long double>(p.top_p) * total;
    long double cumulative = 0;
    size_t kept = 0;
    while (kept < order.size() && cumulative < target) cumulative += w[order[kept++]];
    order.resize(std::max<size_t>(kept, 1));
  }
  std::vector<int32_t> drawn;
  for (const int32_t id : order) {
    if (!(w[id] < p.min_p) && w[id] > 0) drawn.push_back(id);
  }
  if (!top_k) std::sort(drawn.begin(), drawn.end());
  long double total = 0;
  for (const int32_t id : drawn) total += w[id];
  std::map<int32_t, Interval> intervals;
  long double cumulative = 0;
  for (const int32_t id : drawn) {
    intervals[id] = {cumulative / total, (cumulative + w[id]) / total};
    cumulative += w[id];
  }
  return intervals;
}

// How far u is from token's interval (0 inside); infinity if it cannot be drawn.
double DistanceToInterval(const std::map<int32_t, Interval>& intervals, int32_t token, double u) {
  const auto it = intervals.find(token);
  if (it == intervals.end()) return std::numeric_limits<double>::infinity();
  const long double x = u;
  if (x < it->second.lo) return static_cast<double>(it->second.lo - x);
  if (x >= it->second.hi) return static_cast<double>(x - it->second.hi);
  return 0;
}

struct ParityCount {
  int64_t draws = 0;
  int64_t mismatches = 0;
};

// Runs `rows` on both sides and checks tokens (see the file comment) and
// logprobs; adds to `count`. Returns the GPU's results.
GpuResult ExpectParity(const std::vector<Row>& rows, const std::string& name, ParityCount& count) {
  GpuResult gpu = RunGpu(rows);
  EXPECT_EQ(gpu.tokens.size(), rows.size());
  if (gpu.tokens.size() != rows.size()) return gpu;
  LogprobsCalculator logprobs;
  int reported = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const Row& row = rows[r];
    const int32_t want = CpuToken(row);
    const int32_t got = gpu.tokens[r];
    ++count.draws;
    if (got != want) {
      ++count.mismatches;
      if (row.params.temperature == 0.0f) {
        ADD_FAILURE() << name << " row " << r << ": greedy picked " << got << ", the CPU " << want;
      } else {
        const double u = UniformForToken(row.params.seed, static_cast<uint64_t>(row.token_index));
        const std::map<int32_t, Interval> intervals = DrawIntervals(row);
        const double d_got = DistanceToInterval(intervals, got, u);
        const double d_want = DistanceToInterval(intervals, want, u);
        if ((d_got > kBoundaryTolerance || d_want > kBoundaryTolerance) && reported++ < 10) {
          ADD_FAILURE() << name << " row " << r << " (token_index " << row.token_index << ", u " << u
                        << "): GPU picked " << got << " (" << d_got << " from its CDF interval), the CPU " << want
                        << " (" << d_want << ")";
        }
      }
    }
    if (got < 0 || got >= static_cast<int32_t>(row.logits.size())) continue;
    absl::StatusOr<Logprobs> lp = logprobs.Compute(row.logits, got, 0);
    EXPECT_TRUE(lp.ok()) << lp.status();
    if (!lp.ok()) continue;
    const double tolerance = 1e-5 * std::max(1.0, std::abs(static_cast<double>(lp->chosen)));
    if (!(std::abs(static_cast<double>(gpu.logprobs[r]) - lp->chosen) <= tolerance) && reported++ < 10) {
      ADD_FAILURE() << name << " row " << r << ": logprob " << gpu.logprobs[r] << ", the CPU " << lp->chosen;
    }
  }
  return gpu;
}

struct Case {
  std::string name;
  LogitKind kind = LogitKind::kGaussian;
  SamplingParams params;
  int history_length = 0;
  int min_vocab = 0;  // skipped for smaller vocabularies
};

SamplingParams Params(float temperature, int32_t top_k, float top_p, float min_p) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  return p;
}

SamplingParams WithPenalties(SamplingParams p, float repetition, float presence, float frequency, int32_t window) {
  p.repetition_penalty = repetition;
  p.presence_penalty = presence;
  p.frequency_penalty = frequency;
  p.penalty_window = window;
  return p;
}

// Every case but top-k without top-p (TopKDrawOrder below).
std::vector<Case> ParityCases() {
  using K = LogitKind;
  return {
      {"greedy", K::kGaussian, Params(0, 0, 1, 0)},
      {"greedy_ties", K::kQuantized, Params(0, 0, 1, 0)},
      {"greedy_penalties", K::kQuantized, WithPenalties(Params(0, 0, 1, 0), 1.3f, 0.5f, 0.3f, 64), 200},
      {"plain", K::kGaussian, Params(1, 0, 1, 0)},
      {"cold", K::kGaussian, Params(0.5f, 0, 1, 0)},
      {"hot", K::kGaussian, Params(1.7f, 0, 1, 0)},
      {"top_p", K::kGaussian, Params(1, 0, 0.9f, 0)},
      {"top_p_low", K::kGaussian, Params(0.8f, 0, 0.3f, 0)},
      {"top_p_tiny", K::kGaussian, Params(1, 0, 0.01f, 0)},
      {"top_p_flat", K::kFlat, Params(1.3f, 0, 0.95f, 0)},
      {"min_p", K::kGaussian, Params(1, 0, 1, 0.05f)},
      {"min_p_one", K::kQuantized, Params(1, 0, 1, 1.0f)},
      {"top_p_min_p", K::kGaussian, Params(0.9f, 0, 0.95f, 0.02f)},
      {"top_k_one", K::kGaussian, Params(1.5f, 1, 0.5f, 0)},
      {"top_k_top_p", K::kGaussian, Params(1, 40, 0.95f, 0)},
      {"top_k_all", K::kGaussian, Params(1, 4096, 0.999f, 0.01f)},
      {"top_k_min_p_top_p", K::kGaussian, Params(1, 20, 0.999f, 0.02f)},
      {"top_k_large", K::kGaussian, Params(1, 5000, 0.95f, 0), 0, 6000},
      {"top_k_large_min_p", K::kGaussian, Params(1.2f, 4500, 0.99f, 0.001f), 0, 6000},
      {"top_k_large_flat", K::kFlat, Params(1, 20000, 0.9f, 0), 0, 20001},
      {"penalties", K::kGaussian, WithPenalties(Params(1, 0, 1, 0), 1.3f, 0.5f, 0.3f, 64), 200},
      {"penalties_negative", K::kGaussian, WithPenalties(Params(0.7f, 0, 0.9f, 0), 0.8f, -1.0f, -0.5f, 300), 100},
      {"combined", K::kGaussian, WithPenalties(Params(0.8f, 50, 0.9f, 0.03f), 1.2f, 0, -0.4f, 16), 40},
      {"masked", K::kMasked, Params(1, 0, 0.9f, 0)},
      {"masked_top_k", K::kMasked, WithPenalties(Params(1, 30, 0.8f, 0), 1.5f, 0, 0, 64), 64},
      {"ties_top_p", K::kQuantized, Params(1, 0, 0.6f, 0)},
      {"ties_min_p", K::kQuantized, Params(1, 0, 1, 0.05f)},
      {"ties_top_k", K::kQuantized, Params(1, 30, 0.9f, 0)},
      {"uniform", K::kUniform, Params(1, 0, 1, 0)},
      {"uniform_top_p", K::kUniform, Params(1, 0, 0.3f, 0)},
      {"uniform_top_k", K::kUniform, Params(1, 30, 0.5f, 0)},
      {"uniform_top_k_large", K::kUniform, Params(1, 5000, 0.5f, 0), 0, 6000},
      {"near_flat_top_p", K::kNearFlat, Params(1, 0, 0.9f, 0)},
      {"near_flat_top_k_top_p", K::kNearFlat, Params(1, 50, 0.9f, 0)},
      {"near_flat_top_k_large", K::kNearFlat, Params(1, 4500, 0.95f, 0), 0, 6000},
      {"outliers_top_k", K::kOutliers, Params(1, 300, 0.95f, 0)},
      {"outliers_hot_top_p", K::kOutliers, Params(1e4f, 0, 0.5f, 0)},
      {"outliers_hot_top_k_large", K::kOutliers, Params(1e4f, 5000, 0.7f, 0), 0, 6000},
  };
}

// rows_per_logits draws (token indices) for each of logit_rows rows.
std::vector<Row> MakeRows(const Case& c, int vocab, int logit_rows, int draws, uint32_t seed) {
  std::vector<Row> rows;
  for (int r = 0; r < logit_rows; ++r) {
    const uint32_t row_seed = seed * 1000 + r;
    const std::vector<float> logits = MakeLogits(vocab, row_seed, c.kind);
    const std::vector<int32_t> history =
        c.history_length > 0 ? MakeHistory(logits, row_seed, c.history_length) : std::vector<int32_t>{};
    for (int d = 0; d < draws; ++d) {
      Row row{logits, c.params, history, 0};
      row.params.seed = 0x9e3779b97f4a7c15ull * (r + 1);
      row.token_index = d * 7 + r;
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

class CudaSamplerParityTest : public ::testing::TestWithParam<int> {};

TEST_P(CudaSamplerParityTest, MatchesCpuSampler) {
  SUPRA_SKIP_WITHOUT_GPU();
  const int vocab = GetParam();
  const int draws = vocab >= 32000 ? 96 : 256;
  ParityCount count;
  uint32_t seed = 1;
  for (const Case& c : ParityCases()) {
    ++seed;
    if (vocab < c.min_vocab) continue;
    SCOPED_TRACE(c.name);
    ExpectParity(MakeRows(c, vocab, 8, draws, seed), c.name, count);
  }
  std::printf("vocab %d: %lld of %lld draws differ from the CPU\n", vocab, static_cast<long long>(count.mismatches),
              static_cast<long long>(count.draws));
  EXPECT_LE(static_cast<double>(count.mismatches), kMaxMismatchRate * static_cast<double>(count.draws));
}

INSTANTIATE_TEST_SUITE_P(Vocab, CudaSamplerParityTest, ::testing::Values(97, 1000, 32000));

// Top-k without top-p: the CPU draws its candidates most likely first only
// if Sampler::Sample sorts them (CandidateSet::KeepTopP sorts them with
// top-p). The first check tells the two failure causes apart.
TEST(CudaSamplerTest, TopKDrawOrderMatchesCpuSampler) {
  SUPRA_SKIP_WITHOUT_GPU();
  const std::vector<float> logits = MakeLogits(1000, 3, LogitKind::kGaussian);
  SamplingParams p = Params(1, 40, 1, 0);
  int cpu_unsorted = 0;
  for (int i = 0; i < 64; ++i) {
    sampling_internal::CandidateSet sorted;
    sorted.SelectTopK(logits, p.top_k, *std::max_element(logits.begin(), logits.end()), 1.0f);
    sorted.Sort();
    cpu_unsorted += CpuToken({logits, p, {}, i}) != sorted.Draw(UniformForToken(p.seed, i));
  }
  EXPECT_EQ(cpu_unsorted, 0) << "the CPU Sampler does not draw top-k candidates most likely first when top_p == 1 "
                                "(CandidateSet's heap order): the GPU cannot follow that order";
  ParityCount count;
  const std::vector<Case> cases = {
      {"top_k", LogitKind::kGaussian, Params(1, 40, 1, 0)},
      {"top_k_min_p", LogitKind::kQuantized, Params(0.8f, 100, 1, 0.05f)},
      {"top_k_large", LogitKind::kGaussian, Params(1, 5000, 1, 0), 0, 6000},
  };
  for (const int vocab : {1000, 32000}) {
    for (const Case& c : cases) {
      if (vocab < c.min_vocab) continue;
      ExpectParity(MakeRows(c, vocab, 4, 64, 77), c.name, count);
    }
  }
  EXPECT_LE(static_cast<double>(count.mismatches), kMaxMismatchRate * static_cast<double>(count.draws));
}

// Greedy never depends on rounding: always the CPU's token, with ties,
// penalties and -inf.
TEST(CudaSamplerTest, GreedyEqualsCpuAlways) {
  SUPRA_SKIP_WITHOUT_GPU();
  for (const int vocab : {97, 1000, 32000}) {
    std::vector<Row> rows;
    for (int r = 0; r < 48; ++r) {
      const LogitKind kind =
          r % 3 == 0 ? LogitKind::kQuantized : (r % 3 == 1 ? LogitKind::kMasked : LogitKind::kUniform);
      Row row{MakeLogits(vocab, 500 + r, kind), Params(0, r % 4 == 0 ? 5 : 0, 1, 0), {}, r};
      if (r % 2 == 0) {
        row.params = WithPenalties(row.params, 1.5f, 0.7f, 0.2f, 32);
        row.history = MakeHistory(row.logits, r, 50);
      }
      rows.push_back(std::move(row));
    }
    const GpuResult gpu = RunGpu(rows);
    ASSERT_EQ(gpu.tokens.size(), rows.size());
    for (size_t r = 0; r < rows.size(); ++r)
      EXPECT_EQ(gpu.tokens[r], CpuToken(rows[r])) << "vocab " << vocab << " row " << r;
  }
}

// A batch of rows with different parameters samples each row as it would
// alone: the same tokens and logprobs, bit for bit.
TEST(CudaSamplerTest, BatchEqualsEachRowAlone) {
  SUPRA_SKIP_WITHOUT_GPU();
  const std::vector<Case> cases = ParityCases();
  std::vector<Row> rows;
  for (size_t i = 0; i < cases.size(); ++i) {
    if (cases[i].min_vocab > 1000) continue;
    std::vector<Row> some = MakeRows(cases[i], 1000, 2, 2, 900 + static_cast<uint32_t>(i));
    rows.insert(rows.end(), some.begin(), some.end());
  }
  const GpuResult batch = RunGpu(rows);
  ASSERT_EQ(batch.tokens.size(), rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    const GpuResult alone = RunGpu({rows[r]});
    ASSERT_EQ(alone.tokens.size(), 1u);
    EXPECT_EQ(batch.tokens[r], alone.tokens[0]) << "row " << r;
    EXPECT_EQ(std::memcmp(&batch.logprobs[r], &alone.logprobs[0], sizeof(float)), 0)
        << "row " << r << ": " << batch.logprobs[r] << " vs " << alone.logprobs[0];
  }
}

// Rows the CPU would reject come back as -1 (NaN logprob) without
// disturbing their neighbours; CopyResults turns them into INVALID_ARGUMENT.
TEST(CudaSamplerTest, InvalidRowsGiveMinusOne) {
  SUPRA_SKIP_WITHOUT_GPU();
  constexpr int kVocab = 1000;
  std::vector<Row> rows;
  for (int r = 0; r < 5; ++r)
    rows.push_back({MakeLogits(kVocab, 60 + r, LogitKind::kGaussian), Params(1, 0, 0.9f, 0), {}, r});
  rows[1].logits[17] = std::numeric_limits<float>::quiet_NaN();
  rows[2].logits[999] = std::numeric_limits<float>::infinity();
  std::fill(rows[3].logits.begin(), rows[3].logits.end(), kNegInf);
  const GpuResult gpu = RunGpu(rows);
  ASSERT_EQ(gpu.tokens.size(), rows.size());
  EXPECT_EQ(gpu.tokens[1], -1);
  EXPECT_EQ(gpu.tokens[2], -1);
  EXPECT_EQ(gpu.tokens[3], -1);
  EXPECT_TRUE(std::isnan(gpu.logprobs[1]));
  EXPECT_EQ(gpu.tokens[0], CpuToken(rows[0]));
  EXPECT_EQ(gpu.tokens[4], CpuToken(rows[4]));

  // A window id outside the vocabulary that bypassed ValidateSampleSpecs.
  std::vector<float> logits = rows[0].logits;
  logits.insert(logits.end(), rows[4].logits.begin(), rows[4].logits.end());
  const DeviceBuffer<float> device_logits = Upload(logits);
  std::vector<DeviceSamplingParams> params = {
      ToDeviceSamplingParams(WithPenalties(Params(1, 0, 1, 0), 1.2f, 0, 0, 8), 0),
      ToDeviceSamplingParams(WithPenalties(Params(1, 0, 1, 0), 1.2f, 0, 0, 8), 0)};
  const DeviceBuffer<DeviceSamplingParams> device_params = Upload(params);
  const DeviceBuffer<int32_t> history = Upload(std::vector<int32_t>{3, kVocab, 5, 6});
  const DeviceBuffer<int32_t> offsets = Upload(std::vector<int32_t>{0, 2, 4});
  DeviceBuffer<int32_t> tokens = testing::PoisonedBuffer<int32_t>(2);
  absl::StatusOr<DeviceBuffer<int32_t>> workspace = DeviceBuffer<int32_t>::Allocate(2 * kVocab);
  ASSERT_TRUE(workspace.ok());
  ASSERT_TRUE(LaunchSample(device_logits.data(), 2, kVocab, device_params.data(), history.data(), offsets.data(),
                           tokens.data(), nullptr, workspace->data(), workspace->bytes(), nullptr)
                  .ok());
  const std::vector<int32_t> got = Download(tokens);
  EXPECT_EQ(got[0], -1);
  EXPECT_GE(got[1], 0);

  // CopyResults names the bad row.
  absl::StatusOr<DeviceSampler> sampler = DeviceSampler::Create(2, kVocab);
  ASSERT_TRUE(sampler.ok());
  std::vector<float> bad = rows[0].logits;
  bad.insert(bad.end(), rows[1].logits.begin(), rows[1].logits.end());
  const DeviceBuffer<float> device_bad = Upload(bad);
  const std::vector<SampleSpec> specs(2);
  ASSERT_TRUE(sampler->Stage(specs, nullptr).ok());
  ASSERT_TRUE(sampler->Sample(device_bad.data(), 2, kVocab, nullptr).ok());
  std::vector<int32_t> host_tokens(2);
  const absl::Status status = sampler->CopyResults(absl::MakeSpan(host_tokens), {}, nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("row 1"), absl::string_view::npos) << status;
}

// DeviceSampler end to end as the backend uses it: Stage, Sample, CopyResults
// over several steps of different batch sizes, histories that outgrow the
// initial buffer, and results equal to the CPU's.
TEST(CudaSamplerTest, DeviceSamplerStepsMatchCpu) {
  SUPRA_SKIP_WITHOUT_GPU();
  constexpr int kVocab = 1000;
  absl::StatusOr<DeviceSampler> sampler = DeviceSampler::Create(8, kVocab);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  LogprobsCalculator calculator;
  for (int step = 0; step < 6; ++step) {
    const int n = 1 + step % 8;
    std::vector<Row> rows;
    std::vector<float> logits;
    for (int r = 0; r < n; ++r) {
      Row row{MakeLogits(kVocab, 100 * step + r, LogitKind::kGaussian), Params(0.9f, 0, 0.95f, 0.01f), {}, step};
      // Long windows from step 3 on: 8 · 4000 ids > the initial 8 · 256.
      row.params = WithPenalties(row.params, 1.1f, 0.2f, 0.1f, step >= 3 ? 4000 : 64);
      row.history = MakeHistory(row.logits, step * 10 + r, step >= 3 ? 5000 : 100);
      row.params.seed = 42 + r;
      logits.insert(logits.end(), row.logits.begin(), row.logits.end());
      rows.push_back(std::move(row));
    }
    std::vector<SampleSpec> specs;
    for (const Row& row : rows) specs.push_back({row.params, row.token_index, row.history});
    const DeviceBuffer<float> device_logits = Upload(logits);
    ASSERT_TRUE(sampler->Stage(specs, nullptr).ok());
    ASSERT_TRUE(sampler->Sample(device_logits.data(), n, kVocab, nullptr).ok());
    std::vector<int32_t> tokens(n);
    std::vector<float> logprobs(n);
    ASSERT_TRUE(sampler->CopyResults(absl::MakeSpan(tokens), absl::MakeSpan(logprobs), nullptr).ok());
    for (int r = 0; r < n; ++r) {
      EXPECT_EQ(tokens[r], CpuToken(rows[r])) << "step " << step << " row " << r;
      absl::StatusOr<Logprobs> lp = calculator.Compute(rows[r].logits, tokens[r], 0);
      ASSERT_TRUE(lp.ok());
      EXPECT_NEAR(logprobs[r], lp->chosen, 1e-5 * std::max(1.0f, std::abs(lp->chosen)));
    }
  }
  // Sample must follow a Stage of the same size.
  const DeviceBuffer<float> device_logits = Upload(std::vector<float>(3 * kVocab, 0.5f));
  EXPECT_EQ(sampler->Sample(device_logits.data(), 3, kVocab, nullptr).code(), absl::StatusCode::kInvalidArgument);
}

// The launcher splits a row among a cluster of 1 to 8 blocks: more for
// fewer rows, at least enough for the slices to fit in shared memory (4 for
// 131072). At vocabularies that leave partial and padded slices, every row of
// a batch of 257 (every case of ParityCases in turn) is the CPU's, and the
// first 1, 3 and 64 of them sampled as a batch of their own (other cluster
// sizes) give the same tokens and logprobs, bit for bit.
TEST(CudaSamplerTest, RowsSampleAlikeInEveryBatchSize) {
  SUPRA_SKIP_WITHOUT_GPU();
  const std::vector<Case> cases = ParityCases();
  ParityCount count;
  for (const int vocab : {1, 31, 32000, 32001, 45057, 131072}) {
    SCOPED_TRACE(absl::StrCat("vocab ", vocab));
    std::vector<Row> rows;
    for (int r = 0; rows.size() < 257; ++r) {
      const Case& c = cases[r % cases.size()];
      if (vocab < c.min_vocab) continue;
      Row row = MakeRows(c, vocab, 1, 1, 3000 + r).front();
      row.params.seed = 1000 + r;
      row.token_index = r;
      rows.push_back(std::move(row));
    }
    const GpuResult all = ExpectParity(rows, absl::StrCat("vocab ", vocab), count);
    ASSERT_EQ(all.tokens.size(), rows.size());
    for (const int batch : {1, 3, 64}) {
      const GpuResult some = RunGpu(std::vector<Row>(rows.begin(), rows.begin() + batch));
      ASSERT_EQ(some.tokens.size(), static_cast<size_t>(batch));
      for (int r = 0; r < batch; ++r) {
        EXPECT_EQ(some.tokens[r], all.tokens[r]) << "batch " << batch << " row " << r;
        EXPECT_EQ(std::memcmp(&some.logprobs[r], &all.logprobs[r], sizeof(float)), 0)
            << "batch " << batch << " row " << r << ": " << some.logprobs[r] << " vs " << all.logprobs[r];
      }
    }
  }
  EXPECT_LE(static_cast<double>(count.mismatches), kMaxMismatchRate * static_cast<double>(count.draws));
}

// Gemma's 256000: eight blocks per row, whatever the batch.
TEST(CudaSamplerTest, LargeVocabulary) {
  SUPRA_SKIP_WITHOUT_GPU();
  Case c{"large_vocab", LogitKind::kGaussian, WithPenalties(Params(1, 0, 0.9f, 0.01f), 1.3f, 0.2f, 0.1f, 128), 300};
  ParityCount count;
  ExpectParity(MakeRows(c, 256000, 4, 8, 5), c.name, count);
  c.params.top_k = 50;
  ExpectParity(MakeRows(c, 256000, 4, 8, 6), c.name, count);
  EXPECT_LE(static_cast<double>(count.mismatches), kMaxMismatchRate * static_cast<double>(count.draws));
}

// ---- goodness of fit -----------------------------------------------------------

// Pearson's statistic over bins of expected count >= 5 (the rest merged),
// against its Wilson-Hilferty critical value at p = 1e-4.
TEST(CudaSamplerTest, DrawsFitTheTargetDistribution) {
  SUPRA_SKIP_WITHOUT_GPU();
  constexpr int kVocab = 120;
  constexpr int kDraws = 200000;
  std::vector<float> logits = MakeLogits(kVocab, 7, LogitKind::kMasked);
  for (SamplingParams p : {Params(0.9f, 40, 0.9f, 0.02f), Params(1.2f, 0, 0.8f, 0)}) {
    p.seed = 20240601;
    std::vector<DeviceSamplingParams> params(kDraws);
    for (int i = 0; i < kDraws; ++i) params[i] = ToDeviceSamplingParams(p, i);
    std::vector<float> all;
    all.reserve(static_cast<size_t>(kDraws) * kVocab);
    for (int i = 0; i < kDraws; ++i) all.insert(all.end(), logits.begin(), logits.end());
    const DeviceBuffer<float> device_logits = Upload(all);
    const DeviceBuffer<DeviceSamplingParams> device_params = Upload(params);
    const DeviceBuffer<int32_t> history = Upload(std::vector<int32_t>{0});
    const DeviceBuffer<int32_t> offsets = Upload(std::vector<int32_t>(kDraws + 1, 0));
    DeviceBuffer<int32_t> tokens = testing::PoisonedBuffer<int32_t>(kDraws);
    absl::StatusOr<DeviceBuffer<int32_t>> workspace =
        DeviceBuffer<int32_t>::Allocate(static_cast<size_t>(kDraws) * kVocab);
    ASSERT_TRUE(workspace.ok());
    ASSERT_TRUE(LaunchSample(device_logits.data(), kDraws, kVocab, device_params.data(), history.data(), offsets.data(),
                             tokens.data(), nullptr, workspace->data(), workspace->bytes(), nullptr)
                    .ok());
    const std::vector<int32_t> drawn = Download(tokens);
    const std::vector<double> target = supra::testing::TargetDistribution(logits, p);
    std::vector<int64_t> observed(kVocab, 0);
    for (const int32_t t : drawn) {
      ASSERT_GE(t, 0);
      ASSERT_LT(t, kVocab);
      ++observed[t];
    }
    for (int i = 0; i < kVocab; ++i) {
      if (target[i] == 0) {
        EXPECT_EQ(observed[i], 0) << "token " << i << " is outside the allowed set";
      }
    }
    const supra::testing::ChiSquare fit = supra::testing::Fit(observed, target, kDraws);
    ASSERT_GE(fit.bins, 2);
    EXPECT_LT(fit.statistic, fit.critical) << "bins " << fit.bins;
  }
}

// ---- host-side checks (no GPU needed) ----------------------------------------

TEST(CudaSamplerHostTest, ValidateSampleSpecsRejectsWhatTheCpuRejects) {
  const std::vector<int32_t> history = {1, 2, 1000, 3};
  auto spec = [&](SamplingParams p, int64_t index = 0) { return SampleSpec{p, index, history}; };
  EXPECT_TRUE(ValidateSampleSpecs({spec(Params(1, 0, 1, 0))}, 1000).ok());  // no penalties: the window is not read
  SamplingParams bad = Params(-1, 0, 1, 0);
  EXPECT_EQ(ValidateSampleSpecs({spec(bad)}, 1000).code(), absl::StatusCode::kInvalidArgument);
  bad = Params(1, 0, 0, 0);
  EXPECT_EQ(ValidateSampleSpecs({spec(Params(1, 0, 1, 0)), spec(bad)}, 1000).code(),
            absl::StatusCode::kInvalidArgument);
  bad = Params(1, -1, 1, 0);
  EXPECT_EQ(ValidateSampleSpecs({spec(bad)}, 1000).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSampleSpecs({spec(Params(1, 0, 1, 0), -1)}, 1000).code(), absl::StatusCode::kInvalidArgument);
  // With penalties the window is read: id 1000 is outside a vocabulary of 1000 ...
  const SamplingParams penalised = WithPenalties(Params(1, 0, 1, 0), 1.2f, 0, 0, 2);
  const absl::Status status = ValidateSampleSpecs({spec(penalised)}, 1000);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("1000"), absl::string_view::npos) << status;
  // ... but not when it is before the window, as for the CPU's ApplyPenalties.
  EXPECT_TRUE(ValidateSampleSpecs({spec(WithPenalties(Params(1, 0, 1, 0), 1.2f, 0, 0, 1))}, 1000).ok());
  EXPECT_TRUE(ValidateSampleSpecs({spec(penalised)}, 1001).ok());
  EXPECT_EQ(ValidateSampleSpecs({}, 0).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CudaSamplerHostTest, LaunchSampleRejectsBadArgumentsBeforeLaunching) {
  // Dummy non-null pointers: every call below must fail before touching them.
  float logits = 0;
  DeviceSamplingParams params;
  int32_t ids = 0, tokens = 0;
  int32_t workspace[4];
  auto launch = [&](const float* l, int64_t n, int64_t vocab, void* ws, size_t ws_bytes) {
    return LaunchSample(l, n, vocab, &params, &ids, &ids, &tokens, nullptr, ws, ws_bytes, nullptr).code();
  };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(launch(nullptr, 1, 4, workspace, sizeof(workspace)), kInvalid);
  EXPECT_EQ(launch(&logits, 1, 0, workspace, sizeof(workspace)), kInvalid);
  EXPECT_EQ(launch(&logits, 1, kMaxSampleVocab + 1, workspace, sizeof(workspace)), kInvalid);
  EXPECT_EQ(launch(&logits, -1, 4, workspace, sizeof(workspace)), kInvalid);
  EXPECT_EQ(launch(&logits, int64_t{1} << 31, 4, workspace, sizeof(workspace)), kInvalid);
  EXPECT_EQ(launch(&logits, 1, 4, nullptr, sizeof(workspace)), kInvalid);
  EXPECT_EQ(launch(&logits, 2, 4, workspace, sizeof(workspace)), kInvalid);  // needs 2 · 4 ints
  EXPECT_TRUE(LaunchSample(nullptr, 0, 4, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr).ok());
  EXPECT_EQ(SampleWorkspaceBytes(3, 1000), 3u * 1000u * sizeof(int32_t));
}

TEST(CudaSamplerHostTest, DeviceParamsCarryEveryField) {
  SamplingParams p = WithPenalties(Params(0.7f, 12, 0.9f, 0.05f), 1.1f, 0.3f, -0.2f, 77);
  p.seed = 0x123456789abcdefull;
  const DeviceSamplingParams d = ToDeviceSamplingParams(p, 4242);
  EXPECT_EQ(d.temperature, 0.7f);
  EXPECT_EQ(d.top_k, 12);
  EXPECT_EQ(d.top_p, 0.9f);
  EXPECT_EQ(d.min_p, 0.05f);
  EXPECT_EQ(d.repetition_penalty, 1.1f);
  EXPECT_EQ(d.presence_penalty, 0.3f);
  EXPECT_EQ(d.frequency_penalty, -0.2f);
  EXPECT_EQ(d.penalty_window, 77);
  EXPECT_EQ(d.seed, p.seed);
  EXPECT_EQ(d.token_index, 4242);
  EXPECT_FALSE(PenaltiesActive(Params(1, 0, 1, 0)));
  EXPECT_TRUE(PenaltiesActive(p));
}

}  // namespace
}  // namespace supra::cuda

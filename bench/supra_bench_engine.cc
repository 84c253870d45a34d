// supra-bench-engine: the CUDA backend on the full Mistral-SUPRA config with
// random bf16 weights made on the device (no download). Reports decode
// tokens/s per batch size (wall clock per step after warm-up, top-p sampling
// on the GPU, sampled tokens copied to the host), prefill tokens/s, each step
// against its floor (bytes that must move over the measured copy bandwidth),
// the measured bf16 GEMM rate, state bytes, GPU memory, and the bf16-state
// logit error over 4K tokens.
//
//   supra-bench-engine [--json PATH] [--batches 1,8,32,64,128,256] [--steps 20] [--quick] [--no-graphs]
//                      [--prefill 1x2048,8x2048,ragged,1x32768|none] [--prefill-rows 8192] [--trace DIR]
//                      [--ncu-region]
// (--prefill-rows: rows of one prefill pass, the backend's max_prefill_tokens;
// --no-graphs: decode steps launched kernel by kernel; SUPRA_CUDA_PDL=0:
// without programmatic dependent launch. Both for measuring what they gain.
// --trace DIR: after each measurement, one more decode step / prefill under
// CUPTI's activity API: the GPU timeline as it ran, to DIR/*.csv, and a
// summary per kernel family. --ncu-region: that extra step / prefill runs
// between cudaProfilerStart and cudaProfilerStop, for
// `ncu --profile-from-start off`, which then profiles only those.)
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench_check.h"
#include "engine/cuda/cuda_backend.h"
#include "kernel_trace.h"
#include "nlohmann/json.hpp"

namespace supra {
namespace {

using Clock = std::chrono::steady_clock;

ModelConfig MistralSupra() {
  ModelConfig c;
  c.dim = 4096;
  c.n_layers = 32;
  c.n_heads = 32;
  c.n_heads_kv = 8;
  c.qk_head_dim = 128;
  c.v_head_dim = 128;
  c.intermediate_dim_ffn = 14336;
  c.vocab_size = 32000;
  c.use_decay = true;
  c.seq_len = 2048;
  return c;
}

#define CHECK_OK(expr)                                                                  \
  do {                                                                                  \
    const absl::Status check_status_ = (expr);                                          \
    if (!check_status_.ok()) {                                                          \
      std::fprintf(stderr, "%s failed: %s\n", #expr, check_status_.ToString().c_str()); \
      std::exit(1);                                                                     \
    }                                                                                   \
  } while (0)

// Device-to-device copy bandwidth, counting bytes read plus written.
double MeasureCopyBandwidth() {
  const size_t bytes = size_t{2} << 30;
  void *a = nullptr, *b = nullptr;
  CHECK_CUDA(cudaMalloc(&a, bytes));
  CHECK_CUDA(cudaMalloc(&b, bytes));
  CHECK_CUDA(cudaMemset(a, 1, bytes));
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < 3; ++i) CHECK_CUDA(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
  cudaEventRecord(start);
  const int reps = 10;
  for (int i = 0; i < reps; ++i) CHECK_CUDA(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice));
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes * reps / (ms / 1e3);
}

// bf16 GEMM rate (fp32 accumulation) on an 8192³ product of random data.
double MeasureGemmRate() {
  const int n = 8192;
  std::vector<__nv_bfloat16> host(static_cast<size_t>(n) * n);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (auto& v : host) v = __float2bfloat16(dist(rng));
  __nv_bfloat16 *a, *b, *c;
  CHECK_CUDA(cudaMalloc(&a, host.size() * 2));
  CHECK_CUDA(cudaMalloc(&b, host.size() * 2));
  CHECK_CUDA(cudaMalloc(&c, host.size() * 2));
  CHECK_CUDA(cudaMemcpy(a, host.data(), host.size() * 2, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(b, host.data(), host.size() * 2, cudaMemcpyHostToDevice));
  cublasHandle_t handle;
  cublasCreate(&handle);
  const float alpha = 1, beta = 0;
  auto run = [&] {
    cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a, CUDA_R_16BF, n, b, CUDA_R_16BF, n, &beta, c,
                 CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  };
  for (int i = 0; i < 3; ++i) run();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start);
  const int reps = 10;
  for (int i = 0; i < reps; ++i) run();
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cublasDestroy(handle);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  return 2.0 * n * n * double{n} * reps / (ms / 1e3);
}

std::vector<int32_t> RandomTokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(3, 31999);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = dist(rng);
  return t;
}

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Runs `region` once more, outside the timing: under CUPTI when trace_dir is
// set (timeline to trace_dir/label.csv, summary to stdout), and between
// cudaProfilerStart/Stop when ncu_region is set.
template <typename Region>
void Inspect(const std::string& trace_dir, bool ncu_region, const std::string& label, Region&& region) {
  if (!trace_dir.empty()) {
    std::string error;
    CHECK_CUDA(cudaDeviceSynchronize());
    if (!bench::KernelTrace::Begin(&error)) {
      std::printf("trace %s: not recorded: %s\n", label.c_str(), error.c_str());
    } else {
      region();
      CHECK_CUDA(cudaDeviceSynchronize());
      bench::ReportTrace(bench::KernelTrace::End(), label, trace_dir + "/" + label + ".csv", stdout);
    }
  }
  if (ncu_region) {
    CHECK_CUDA(cudaDeviceSynchronize());
    CHECK_CUDA(cudaProfilerStart());
    region();
    CHECK_CUDA(cudaDeviceSynchronize());
    CHECK_CUDA(cudaProfilerStop());
  }
}

int Run(int argc, char** argv) {
  std::string json_path;
  std::vector<int> batches = {1, 8, 32, 64, 128, 256};
  int steps = 20;
  bool quick = false;
  bool graphs = true;
  std::string trace_dir;
  int prefill_rows = 8192;
  bool ncu_region = false;
  std::vector<std::string> prefill_names = {"1x2048", "8x2048", "ragged", "1x32768"};
  bool prefill_chosen = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (arg == "--steps" && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (arg == "--quick") {
      quick = true;
    } else if (arg == "--no-graphs") {
      graphs = false;
    } else if (arg == "--prefill-rows" && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &prefill_rows) || prefill_rows < 1) {
        std::fprintf(stderr, "--prefill-rows: a positive number of rows\n");
        return 2;
      }
    } else if (arg == "--trace" && i + 1 < argc) {
      trace_dir = argv[++i];
      std::error_code error;
      std::filesystem::create_directories(trace_dir, error);  // a failure shows when the CSV is written
    } else if (arg == "--ncu-region") {
      ncu_region = true;
    } else if (arg == "--prefill" && i + 1 < argc) {
      prefill_chosen = true;
      prefill_names.clear();
      for (absl::string_view part : absl::StrSplit(argv[++i], ',')) {
        if (part != "none") prefill_names.emplace_back(part);
      }
    } else if (arg == "--batches" && i + 1 < argc) {
      batches.clear();
      for (absl::string_view part : absl::StrSplit(argv[++i], ',')) {
        int b;
        if (absl::SimpleAtoi(part, &b)) batches.push_back(b);
      }
    } else {
      std::fprintf(
          stderr,
          "usage: supra-bench-engine [--json PATH] [--batches 1,8,...] [--steps N] [--quick] [--no-graphs]\n"
          "                          [--prefill 1x2048,8x2048,ragged,1x32768|none] [--prefill-rows N] [--trace DIR]\n"
          "                          [--ncu-region]\n"
          "  SUPRA_CUDA_PDL=0 in the environment launches every kernel without programmatic dependent launch\n");
      return 2;
    }
  }
  nlohmann::json results = nlohmann::json::array();
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const double copy_bw = MeasureCopyBandwidth();
  const double gemm_rate = MeasureGemmRate();
  std::printf("device %s, copy bandwidth %.0f GB/s (read+write), bf16 GEMM %.0f TFLOP/s\n", prop.name, copy_bw / 1e9,
              gemm_rate / 1e12);
  results.push_back(
      {{"kind", "device"}, {"name", prop.name}, {"copy_GBps", copy_bw / 1e9}, {"gemm_TFLOPs", gemm_rate / 1e12}});

  const ModelConfig config = MistralSupra();
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  CudaBackendOptions options;
  options.num_slots = std::max(max_batch, 16) + 2;
  options.max_batch = std::max(max_batch, 8);
  options.max_prefill_tokens = prefill_rows;
  options.cuda_graphs = graphs;
  const auto t0 = Clock::now();
  auto backend = CreateCudaBackendWithRandomWeights(config, options, 1234);
  CHECK_OK(backend.status());
  std::printf("random weights made in %.2f s\n", Seconds(t0, Clock::now()));
  Backend& b = **backend;
  size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  const double state_bytes = static_cast<double>(config.state_numel()) * 4;
  // Bytes a decode step must move: every matrix but the embedding, once; the
  // gathered embedding rows; each sequence's state read and written.
  double weight_bytes = 0;
  {
    const double d = config.dim, h = config.n_heads, hkv = config.n_heads_kv, f = config.qk_head_dim;
    const double dv = config.v_head_dim, ffn = config.intermediate_dim_ffn, v = config.vocab_size;
    const double per_layer = (h * 128 + hkv * 128 + hkv * dv) * d + h * f * h * 128 + hkv * f * hkv * 128 + d * h * dv +
                             2 * ffn * d + d * ffn;
    weight_bytes = 2 * (config.n_layers * per_layer + v * d);
  }
  std::printf("weights read per step %.2f GB, state %.1f MiB per session, GPU memory used %.1f GiB of %.1f\n",
              weight_bytes / 1e9, state_bytes / (1 << 20), (total_bytes - free_bytes) / double(1 << 30),
              total_bytes / double(1 << 30));
  results.push_back({{"kind", "model"},
                     {"weight_bytes_per_step", weight_bytes},
                     {"state_bytes", state_bytes},
                     {"gpu_memory_used_bytes", total_bytes - free_bytes},
                     {"gpu_memory_total_bytes", total_bytes}});

  // Decode with top-p sampling on the GPU; the sampled tokens come back to the host.
  std::printf("\n%-8s %12s %12s %12s %10s\n", "batch", "ms/step", "tokens/s", "floor ms", "x floor");
  for (int batch : batches) {
    std::vector<int32_t> slots(batch), tokens = RandomTokens(batch, 7 + batch), sampled(batch);
    std::vector<int64_t> positions(batch, 0);
    std::vector<SampleSpec> specs(batch);
    std::vector<int32_t> history = RandomTokens(64, 3);
    for (int i = 0; i < batch; ++i) {
      slots[i] = i;
      specs[i].params.temperature = 1.0f;
      specs[i].params.top_p = 0.9f;
      specs[i].params.seed = i;
      specs[i].history = history;
      CHECK_OK(b.ResetSlot(i));
    }
    const int warmup = 3;
    Clock::time_point start;
    for (int s = 0; s < warmup + steps; ++s) {
      if (s == warmup) start = Clock::now();
      for (int i = 0; i < batch; ++i) specs[i].token_index = s;
      CHECK_OK(b.DecodeAndSample({slots, tokens, positions}, specs, absl::MakeSpan(sampled), {}));
      tokens = sampled;
      for (auto& p : positions) ++p;
    }
    const double step = Seconds(start, Clock::now()) / steps;
    Inspect(trace_dir, ncu_region, "decode_b" + std::to_string(batch), [&] {
      for (int i = 0; i < batch; ++i) specs[i].token_index = warmup + steps;
      CHECK_OK(b.DecodeAndSample({slots, tokens, positions}, specs, absl::MakeSpan(sampled), {}));
    });
    const double floor_bytes = weight_bytes + batch * (config.dim * 2.0 + 2 * state_bytes);
    const double floor = floor_bytes / copy_bw;
    std::printf("%-8d %12.3f %12.0f %12.3f %10.2f\n", batch, step * 1e3, batch / step, floor * 1e3, step / floor);
    results.push_back({{"kind", "decode"},
                       {"batch", batch},
                       {"ms_per_step", step * 1e3},
                       {"tokens_per_s", batch / step},
                       {"floor_ms", floor * 1e3},
                       {"x_floor", step / floor},
                       {"roofline_fraction", floor / step}});
  }

  // Prefill: logits of the last position only.
  struct PrefillCase {
    const char* name;
    std::vector<int> lengths;
  };
  std::vector<PrefillCase> cases = {{"1x2048", {2048}},
                                    {"8x2048", std::vector<int>(8, 2048)},
                                    {"ragged", {100, 3000, 517, 2048, 64, 1500}},
                                    {"1x32768", {32768}}};
  if (quick && !prefill_chosen) cases.pop_back();
  std::erase_if(cases, [&](const PrefillCase& pc) {
    return std::find(prefill_names.begin(), prefill_names.end(), pc.name) == prefill_names.end();
  });
  std::printf("\n%-10s %10s %12s %12s   (passes of at most %d rows)\n", "prefill", "tokens", "ms", "tokens/s",
              prefill_rows);
  for (const PrefillCase& pc : cases) {
    std::vector<std::vector<int32_t>> prompts;
    std::vector<PrefillSequence> seqs;
    int total = 0;
    for (size_t i = 0; i < pc.lengths.size(); ++i) prompts.push_back(RandomTokens(pc.lengths[i], 100 + i));
    for (size_t i = 0; i < pc.lengths.size(); ++i) {
      seqs.push_back({static_cast<int32_t>(i), prompts[i], 0});
      total += pc.lengths[i];
    }
    std::vector<float> logits(pc.lengths.size() * config.vocab_size);
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      for (size_t i = 0; i < seqs.size(); ++i) CHECK_OK(b.ResetSlot(static_cast<int32_t>(i)));
      const auto s = Clock::now();
      CHECK_OK(b.Prefill(seqs, 1 << 20, LogitsOutput::kLastOnly, absl::MakeSpan(logits)));
      best = std::min(best, Seconds(s, Clock::now()));
    }
    Inspect(trace_dir, ncu_region, std::string("prefill_") + pc.name, [&] {
      for (size_t i = 0; i < seqs.size(); ++i) CHECK_OK(b.ResetSlot(static_cast<int32_t>(i)));
      CHECK_OK(b.Prefill(seqs, 1 << 20, LogitsOutput::kLastOnly, absl::MakeSpan(logits)));
    });
    const double flops = 2.0 * weight_bytes / 2 * total;  // 2 FLOP per weight per token (upper bound: head once)
    std::printf("%-10s %10d %12.2f %12.0f   (%.0f%% of the GEMM rate)\n", pc.name, total, best * 1e3, total / best,
                100.0 * flops / best / gemm_rate);
    results.push_back({{"kind", "prefill"},
                       {"case", pc.name},
                       {"tokens", total},
                       {"pass_rows", prefill_rows},
                       {"ms", best * 1e3},
                       {"tokens_per_s", total / best}});
  }

  // bf16 state: logit error against the fp32 state over 4096 tokens, same weights.
  if (!quick) {
    backend->reset();
    CudaBackendOptions small = options;
    small.num_slots = 2;
    small.max_batch = 8;
    small.max_prefill_tokens = 4096;
    auto f32 = CreateCudaBackendWithRandomWeights(config, small, 1234);
    CHECK_OK(f32.status());
    small.state_dtype = StateDType::kBF16;
    const std::vector<int32_t> tokens = RandomTokens(4096, 99);
    std::vector<std::vector<float>> at_f32;
    {
      for (int pos = 0; pos < 4096; pos += 512) {
        std::vector<float> l(config.vocab_size);
        const PrefillSequence seq{0, absl::MakeConstSpan(tokens).subspan(pos, 512), pos};
        CHECK_OK((*f32)->Prefill(absl::MakeConstSpan(&seq, 1), 4096, LogitsOutput::kLastOnly, absl::MakeSpan(l)));
        at_f32.push_back(l);
      }
    }
    f32->reset();
    auto bf16 = CreateCudaBackendWithRandomWeights(config, small, 1234);
    CHECK_OK(bf16.status());
    double worst = 0;
    for (int pos = 0, k = 0; pos < 4096; pos += 512, ++k) {
      std::vector<float> l(config.vocab_size);
      const PrefillSequence seq{0, absl::MakeConstSpan(tokens).subspan(pos, 512), pos};
      CHECK_OK((*bf16)->Prefill(absl::MakeConstSpan(&seq, 1), 4096, LogitsOutput::kLastOnly, absl::MakeSpan(l)));
      double diff = 0, scale = 0;
      for (int i = 0; i < config.vocab_size; ++i) {
        diff = std::max(diff, std::abs(double{l[i]} - at_f32[k][i]));
        scale = std::max(scale, std::abs(double{at_f32[k][i]}));
      }
      worst = std::max(worst, diff / scale);
    }
    std::printf("\nbf16 state vs fp32 state over 4096 tokens: worst max|dlogit|/max|logit| = %.3e\n", worst);
    results.push_back({{"kind", "bf16_state_error"}, {"tokens", 4096}, {"worst_rel_logit_error", worst}});
  }
  if (!json_path.empty()) std::ofstream(json_path) << results.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace supra

int main(int argc, char** argv) { return supra::Run(argc, argv); }

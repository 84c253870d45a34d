// sampling_bench: LaunchSample (engine/cuda/sampling.h) on a 32000-token
// vocabulary at batch 1, 8, 64 and 256, timed with CUDA events, for
//   near_flat_top_p   logits ~ N(0, 0.02) (a model with random weights: the
//                     nucleus holds ~90 % of the vocabulary), top-p 0.9
//   peaked_top_p      logits ~ N(0, 3), top-p 0.9
//   top_k_top_p       logits ~ N(0, 0.02), top-k 50 + top-p 0.9
//   greedy            logits ~ N(0, 0.02), temperature 0
// all at temperature 1 (but greedy), with the chosen token's logprob, as the
// decoder samples. Two timings per case: `launch` is one LaunchSample between
// two events (what a decode step pays; median of kSingles), `stream` the
// mean of kStreamed launches back to back (the kernel without the launch
// latency). `x greedy` divides by greedy's stream time at the same batch: the
// same kernel reading the logits once, the floor of every case. Every row's
// token is checked to be a valid id. About 2 s on an H200.
//
//   sampling_bench [--json PATH]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_check.h"
#include "engine/cuda/sampling.h"

namespace {

constexpr int64_t kVocab = 32000;
constexpr int kBatches[] = {1, 8, 64, 256};
constexpr int kMaxBatch = 256;
constexpr int kWarmup = 20;
constexpr int kSingles = 101;
constexpr int kStreamed = 200;

struct Case {
  const char* name;
  float sd;  // of the normal logits
  float temperature;
  int32_t top_k;
  float top_p;
};

constexpr Case kCases[] = {
    {"near_flat_top_p", 0.02f, 1.0f, 0, 0.9f},
    {"peaked_top_p", 3.0f, 1.0f, 0, 0.9f},
    {"top_k_top_p", 0.02f, 1.0f, 50, 0.9f},
    {"greedy", 0.02f, 0.0f, 0, 1.0f},
};

struct Result {
  const char* name;
  int batch;
  double launch_us;  // median, one launch between two events
  double stream_us;  // mean, launches back to back
};

// Normal(0, sd) logits from a hash of (seed, index), by Box-Muller.
__device__ uint32_t Hash(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

__global__ void FillNormal(float* out,  // [count], fp32
                           int64_t count, float sd, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint32_t a = Hash(static_cast<uint32_t>(i) * 2u + seed * 0x9e3779b9u);
    const uint32_t b = Hash(static_cast<uint32_t>(i) * 2u + 1u + seed * 0x9e3779b9u);
    const float u1 = (static_cast<float>(a >> 8) + 1.0f) * (1.0f / 16777216.0f);  // (0, 1]
    const float u2 = static_cast<float>(b >> 8) * (1.0f / 16777216.0f);
    out[i] = sd * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
  }
}

void Launch(const float* logits, int batch, const supra::cuda::DeviceSamplingParams* params, const int32_t* history,
            const int32_t* offsets, int32_t* tokens, float* logprobs, int32_t* workspace, cudaStream_t stream) {
  const absl::Status status =
      supra::cuda::LaunchSample(logits, batch, kVocab, params, history, offsets, tokens, logprobs, workspace,
                                supra::cuda::SampleWorkspaceBytes(batch, kVocab), stream);
  if (!status.ok()) {
    std::fprintf(stderr, "LaunchSample: %s\n", status.ToString().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* json_path = supra::bench::ParseJsonPath(argc, argv);
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs; vocab %lld; logprobs on\n", prop.name, prop.multiProcessorCount,
              static_cast<long long>(kVocab));
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));

  float *logits = nullptr, *logprobs = nullptr;
  int32_t *tokens = nullptr, *workspace = nullptr, *history = nullptr, *offsets = nullptr;
  supra::cuda::DeviceSamplingParams* params = nullptr;
  CHECK_CUDA(cudaMalloc(&logits, kMaxBatch * kVocab * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&logprobs, kMaxBatch * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&tokens, kMaxBatch * sizeof(int32_t)));
  CHECK_CUDA(cudaMalloc(&workspace, supra::cuda::SampleWorkspaceBytes(kMaxBatch, kVocab)));
  CHECK_CUDA(cudaMalloc(&history, sizeof(int32_t)));
  CHECK_CUDA(cudaMalloc(&offsets, (kMaxBatch + 1) * sizeof(int32_t)));
  CHECK_CUDA(cudaMalloc(&params, kMaxBatch * sizeof(supra::cuda::DeviceSamplingParams)));
  CHECK_CUDA(cudaMemset(history, 0, sizeof(int32_t)));
  CHECK_CUDA(cudaMemset(offsets, 0, (kMaxBatch + 1) * sizeof(int32_t)));

  std::vector<Result> results;
  for (const Case& c : kCases) {
    FillNormal<<<1024, 256, 0, stream>>>(logits, kMaxBatch * kVocab, c.sd, 17);
    CHECK_CUDA(cudaGetLastError());
    std::vector<supra::cuda::DeviceSamplingParams> host_params(kMaxBatch);
    for (int r = 0; r < kMaxBatch; ++r) {
      supra::cuda::DeviceSamplingParams& p = host_params[r];
      p.temperature = c.temperature;
      p.top_k = c.top_k;
      p.top_p = c.top_p;
      p.seed = 1000 + r;
      p.token_index = r;
    }
    CHECK_CUDA(cudaMemcpyAsync(params, host_params.data(), kMaxBatch * sizeof(host_params[0]), cudaMemcpyHostToDevice,
                               stream));
    for (const int batch : kBatches) {
      auto launch = [&] { Launch(logits, batch, params, history, offsets, tokens, logprobs, workspace, stream); };
      for (int i = 0; i < kWarmup; ++i) launch();
      CHECK_CUDA(cudaStreamSynchronize(stream));
      std::vector<int32_t> host_tokens(batch);
      CHECK_CUDA(cudaMemcpy(host_tokens.data(), tokens, batch * sizeof(int32_t), cudaMemcpyDeviceToHost));
      for (int r = 0; r < batch; ++r) {
        if (host_tokens[r] < 0 || host_tokens[r] >= kVocab) {
          std::fprintf(stderr, "%s batch %d row %d: token %d\n", c.name, batch, r, host_tokens[r]);
          return 1;
        }
      }

      std::vector<float> singles(kSingles);
      for (float& ms : singles) {
        CHECK_CUDA(cudaEventRecord(start, stream));
        launch();
        CHECK_CUDA(cudaEventRecord(stop, stream));
        CHECK_CUDA(cudaEventSynchronize(stop));
        CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
      }
      std::nth_element(singles.begin(), singles.begin() + kSingles / 2, singles.end());

      CHECK_CUDA(cudaEventRecord(start, stream));
      for (int i = 0; i < kStreamed; ++i) launch();
      CHECK_CUDA(cudaEventRecord(stop, stream));
      CHECK_CUDA(cudaEventSynchronize(stop));
      float streamed_ms = 0;
      CHECK_CUDA(cudaEventElapsedTime(&streamed_ms, start, stop));
      results.push_back({c.name, batch, 1e3 * singles[kSingles / 2], 1e3 * streamed_ms / kStreamed});
    }
  }

  auto greedy_us = [&](int batch) {
    for (const Result& r : results) {
      if (std::strcmp(r.name, "greedy") == 0 && r.batch == batch) return r.stream_us;
    }
    return 0.0;
  };
  std::printf("\n%-16s %6s %11s %11s %9s\n", "case", "batch", "launch µs", "stream µs", "x greedy");
  for (const Result& r : results) {
    std::printf("%-16s %6d %11.1f %11.1f %9.2f\n", r.name, r.batch, r.launch_us, r.stream_us,
                r.stream_us / greedy_us(r.batch));
  }

  if (json_path != nullptr) {
    FILE* f = std::fopen(json_path, "w");
    if (f == nullptr) {
      std::perror(json_path);
      return 1;
    }
    std::fprintf(f, "{\"device\": \"%s\", \"vocab\": %lld, \"results\": [\n", prop.name,
                 static_cast<long long>(kVocab));
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      std::fprintf(f, "  {\"case\": \"%s\", \"batch\": %d, \"launch_us\": %.2f, \"stream_us\": %.2f}%s\n", r.name,
                   r.batch, r.launch_us, r.stream_us, i + 1 < results.size() ? "," : "");
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }
  CHECK_CUDA(cudaFree(logits));
  CHECK_CUDA(cudaFree(logprobs));
  CHECK_CUDA(cudaFree(tokens));
  CHECK_CUDA(cudaFree(workspace));
  CHECK_CUDA(cudaFree(history));
  CHECK_CUDA(cudaFree(offsets));
  CHECK_CUDA(cudaFree(params));
  return 0;
}

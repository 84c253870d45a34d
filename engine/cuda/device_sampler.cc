// Host side of GPU sampling: parameter conversion and checks, and
// DeviceSampler's staging of SampleSpecs (sampling.h).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/sampling.h"
#include "engine/util/status_macros.h"

namespace supra::cuda {
namespace {

constexpr size_t kAlign = 16;
constexpr int64_t kInitialWindowPerRow = 256;  // SamplingParams' default penalty_window

size_t AlignUp(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// Byte offsets of one Stage's upload: params [rows], offsets [rows + 1],
// history [history_tokens].
struct InputLayout {
  size_t offsets = 0;
  size_t history = 0;
  size_t bytes = 0;
};

InputLayout Layout(int64_t rows, int64_t history_tokens) {
  InputLayout layout;
  layout.offsets = AlignUp(static_cast<size_t>(rows) * sizeof(DeviceSamplingParams));
  layout.history = AlignUp(layout.offsets + static_cast<size_t>(rows + 1) * sizeof(int32_t));
  layout.bytes = AlignUp(layout.history + static_cast<size_t>(history_tokens) * sizeof(int32_t));
  return layout;
}

// The tail of a spec's history its penalties read; empty without penalties.
absl::Span<const int32_t> PenaltyWindow(const SampleSpec& spec) {
  if (!PenaltiesActive(spec.params)) return {};
  const size_t len = std::min(spec.history.size(), static_cast<size_t>(std::max(spec.params.penalty_window, 0)));
  return spec.history.subspan(spec.history.size() - len);
}

absl::StatusOr<uint8_t*> AllocatePinned(size_t bytes, const char* what) {
  uint8_t* p = nullptr;
  const cudaError_t error = cudaMallocHost(reinterpret_cast<void**>(&p), std::max<size_t>(bytes, 1));
  if (error != cudaSuccess) {
    (void)cudaGetLastError();
    const absl::Status status = CudaStatus(error, "cudaMallocHost", __FILE__, __LINE__);
    return absl::Status(status.code(), absl::StrCat("cannot allocate ", bytes, " bytes of pinned host memory for ",
                                                    what, ": ", status.message()));
  }
  return p;
}

}  // namespace

bool PenaltiesActive(const SamplingParams& params) {
  return params.repetition_penalty != 1.0f || params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f;
}

DeviceSamplingParams ToDeviceSamplingParams(const SamplingParams& params, int64_t token_index) {
  DeviceSamplingParams d;
  d.temperature = params.temperature;
  d.top_p = params.top_p;
  d.min_p = params.min_p;
  d.repetition_penalty = params.repetition_penalty;
  d.presence_penalty = params.presence_penalty;
  d.frequency_penalty = params.frequency_penalty;
  d.top_k = params.top_k;
  d.penalty_window = params.penalty_window;
  d.seed = params.seed;
  d.token_index = token_index;
  return d;
}

size_t SampleWorkspaceBytes(int64_t n, int64_t vocab) {
  if (n <= 0 || vocab <= 0) return 0;
  return static_cast<size_t>(n) * static_cast<size_t>(vocab) * sizeof(int32_t);
}

absl::Status ValidateSampleSpecs(absl::Span<const SampleSpec> specs, int64_t vocab) {
  if (vocab < 1 || vocab > kMaxSampleVocab) {
    return absl::InvalidArgumentError(absl::StrCat("sampling: vocab ", vocab, " outside [1, ", kMaxSampleVocab, "]"));
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    const SampleSpec& spec = specs[i];
    if (absl::Status status = ValidateSamplingParams(spec.params); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat("sequence ", i, ": ", status.message()));
    }
    if (spec.token_index < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", i, ": sampling: token_index ", spec.token_index, " < 0"));
    }
    for (const int32_t id : PenaltyWindow(spec)) {
      if (id < 0 || id >= vocab) {
        return absl::InvalidArgumentError(absl::StrCat("sequence ", i, ": penalty window holds token id ", id,
                                                       ", outside the vocabulary [0, ", vocab, ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<DeviceSampler> DeviceSampler::Create(int64_t max_rows, int64_t vocab) {
  if (max_rows < 1 || max_rows > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("DeviceSampler: max_rows ", max_rows, " outside [1, 2^31)"));
  }
  if (vocab < 1 || vocab > kMaxSampleVocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("DeviceSampler: vocab ", vocab, " outside [1, ", kMaxSampleVocab, "]"));
  }
  DeviceSampler sampler;
  sampler.max_rows_ = max_rows;
  sampler.vocab_ = vocab;
  RETURN_IF_ERROR(sampler.ReserveHistory(max_rows * kInitialWindowPerRow, nullptr));
  ASSIGN_OR_RETURN(sampler.workspace_,
                   DeviceBuffer<int32_t>::Allocate(static_cast<size_t>(max_rows * vocab), "sampling workspace"));
  const size_t output_bytes = static_cast<size_t>(max_rows) * (sizeof(int32_t) + sizeof(float));
  ASSIGN_OR_RETURN(sampler.outputs_, DeviceBuffer<uint8_t>::Allocate(output_bytes, "sampled tokens"));
  ASSIGN_OR_RETURN(uint8_t* const results, AllocatePinned(output_bytes, "sampled tokens"));
  sampler.results_.reset(results);
  sampler.tokens_ = reinterpret_cast<int32_t*>(sampler.outputs_.data());
  sampler.logprobs_ =
      reinterpret_cast<float*>(sampler.outputs_.data() + static_cast<size_t>(max_rows) * sizeof(int32_t));
  cudaEvent_t event = nullptr;
  CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  sampler.upload_done_.reset(event);
  return sampler;
}

absl::Status DeviceSampler::ReserveHistory(int64_t history_tokens, cudaStream_t stream) {
  if (history_tokens <= history_capacity_ && staging_ != nullptr) return absl::OkStatus();
  const int64_t capacity = std::max(history_tokens, 2 * history_capacity_);
  // The old buffers may still be read by a queued copy or kernel.
  if (staging_ != nullptr) CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  const size_t bytes = Layout(max_rows_, capacity).bytes;
  ASSIGN_OR_RETURN(inputs_, DeviceBuffer<uint8_t>::Allocate(bytes, "sampling inputs"));
  staging_.reset();
  ASSIGN_OR_RETURN(uint8_t* const staging, AllocatePinned(bytes, "sampling inputs"));
  staging_.reset(staging);
  history_capacity_ = capacity;
  return absl::OkStatus();
}

absl::Status DeviceSampler::Stage(absl::Span<const SampleSpec> specs, cudaStream_t stream) {
  if (max_rows_ == 0) return absl::FailedPreconditionError("DeviceSampler used before Create");
  const auto n = static_cast<int64_t>(specs.size());
  if (n > max_rows_) {
    return absl::InvalidArgumentError(absl::StrCat("DeviceSampler: ", n, " rows, at most ", max_rows_));
  }
  RETURN_IF_ERROR(ValidateSampleSpecs(specs, vocab_));
  int64_t history_tokens = 0;
  for (const SampleSpec& spec : specs) history_tokens += static_cast<int64_t>(PenaltyWindow(spec).size());
  if (history_tokens > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("DeviceSampler: ", history_tokens, " penalty-window tokens"));
  }
  RETURN_IF_ERROR(ReserveHistory(history_tokens, stream));
  // The previous upload must have left the pinned buffer before it is rewritten.
  CUDA_RETURN_IF_ERROR(cudaEventSynchronize(upload_done_.get()));

  const InputLayout layout = Layout(n, history_tokens);
  uint8_t* const host = staging_.get();
  auto* params = reinterpret_cast<DeviceSamplingParams*>(host);
  auto* offsets = reinterpret_cast<int32_t*>(host + layout.offsets);
  auto* history = reinterpret_cast<int32_t*>(host + layout.history);
  int32_t offset = 0;
  for (int64_t r = 0; r < n; ++r) {
    const SampleSpec& spec = specs[r];
    params[r] = ToDeviceSamplingParams(spec.params, spec.token_index);
    offsets[r] = offset;
    const absl::Span<const int32_t> window = PenaltyWindow(spec);
    if (!window.empty()) std::memcpy(history + offset, window.data(), window.size() * sizeof(int32_t));
    offset += static_cast<int32_t>(window.size());
  }
  offsets[n] = offset;
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(inputs_.data(), host, layout.bytes, cudaMemcpyHostToDevice, stream));
  CUDA_RETURN_IF_ERROR(cudaEventRecord(upload_done_.get(), stream));
  params_ = reinterpret_cast<const DeviceSamplingParams*>(inputs_.data());
  history_offsets_ = reinterpret_cast<const int32_t*>(inputs_.data() + layout.offsets);
  history_ = reinterpret_cast<const int32_t*>(inputs_.data() + layout.history);
  staged_rows_ = n;
  return absl::OkStatus();
}

absl::Status DeviceSampler::Sample(const float* logits, int64_t n, int64_t vocab, cudaStream_t stream) {
  if (staged_rows_ < 0) return absl::FailedPreconditionError("DeviceSampler::Sample before Stage");
  if (n != staged_rows_ || vocab != vocab_) {
    return absl::InvalidArgumentError(absl::StrCat("DeviceSampler::Sample: ", n, " rows of ", vocab, " logits, but ",
                                                   staged_rows_, " rows staged for a vocabulary of ", vocab_));
  }
  RETURN_IF_ERROR(LaunchSample(logits, n, vocab, params_, history_, history_offsets_, tokens_, logprobs_,
                               workspace_.data(), workspace_.bytes(), stream));
  sampled_rows_ = n;
  return absl::OkStatus();
}

absl::Status DeviceSampler::CopyResults(absl::Span<int32_t> tokens, absl::Span<float> chosen_logprobs,
                                        cudaStream_t stream) {
  if (sampled_rows_ < 0) return absl::FailedPreconditionError("DeviceSampler::CopyResults before Sample");
  const int64_t n = sampled_rows_;
  if (static_cast<int64_t>(tokens.size()) != n ||
      (!chosen_logprobs.empty() && static_cast<int64_t>(chosen_logprobs.size()) != n)) {
    return absl::InvalidArgumentError(absl::StrCat("DeviceSampler::CopyResults: ", n, " rows sampled, ", tokens.size(),
                                                   " token and ", chosen_logprobs.size(), " logprob outputs"));
  }
  if (n == 0) return absl::OkStatus();
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(results_.get(), outputs_.data(), outputs_.bytes(), cudaMemcpyDeviceToHost, stream));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  const auto* host_tokens = reinterpret_cast<const int32_t*>(results_.get());
  const auto* host_logprobs =
      reinterpret_cast<const float*>(results_.get() + static_cast<size_t>(max_rows_) * sizeof(int32_t));
  for (int64_t r = 0; r < n; ++r) {
    if (host_tokens[r] < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sampling: row ", r, " has a NaN or +inf logit, every logit -inf, or a penalty id outside the vocabulary"));
    }
  }
  std::memcpy(tokens.data(), host_tokens, static_cast<size_t>(n) * sizeof(int32_t));
  if (!chosen_logprobs.empty()) {
    std::memcpy(chosen_logprobs.data(), host_logprobs, static_cast<size_t>(n) * sizeof(float));
  }
  return absl::OkStatus();
}

}  // namespace supra::cuda

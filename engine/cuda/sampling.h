// Sampling on the GPU: one token per row of logits without copying the
// [n, vocab] logits to the host.
//
// Same parameters, order and draw as the CPU Sampler (engine/sampling/
// sampler.h): penalties over the last penalty_window history tokens ->
// temperature 0: greedy argmax (ties to the lowest id) -> temperature -> top-k
// -> softmax -> top-p -> min-p -> renormalise -> inverse-CDF draw with
// u = UniformForToken(seed, token_index). The inverse CDF walks the kept
// tokens in the CPU's order (token id order without top-k, most likely first
// with top-k), and every float step of the CPU (the penalised logit, the
// weight exp((l - max) / T), the min-p test) is reproduced bit for bit. The
// GPU sums those float weights exactly (fixed point, 2^-88 per weight) where
// the CPU rounds float64 sums, so it picks the CPU's token unless u falls
// within the CPU's float64 rounding of a CDF boundary; and its results do not
// depend on the batch the row is sampled in.
//
// Host code only here; the kernel is in sampling.cu.
#ifndef SUPRA_ENGINE_CUDA_SAMPLING_H_
#define SUPRA_ENGINE_CUDA_SAMPLING_H_

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/backend.h"
#include "engine/cuda/device_buffer.h"
#include "engine/sampling/sampling_params.h"

namespace supra::cuda {

// One row's parameters as the kernel reads them (plain data, 48 bytes).
struct DeviceSamplingParams {
  float temperature = 1.0f;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t top_k = 0;
  int32_t penalty_window = 0;
  uint64_t seed = 0;
  int64_t token_index = 0;  // >= 0
};
static_assert(sizeof(DeviceSamplingParams) == 48, "DeviceSamplingParams is shared with the kernel");

// Largest vocabulary LaunchSample accepts (Gemma's 256000 and 2^18 fit).
inline constexpr int64_t kMaxSampleVocab = int64_t{1} << 18;

DeviceSamplingParams ToDeviceSamplingParams(const SamplingParams& params, int64_t token_index);

// True when the penalties change any logit (the CPU's ApplyPenalties early-out).
bool PenaltiesActive(const SamplingParams& params);

// What the CPU Sampler would reject before sampling, checked on the host:
// INVALID_ARGUMENT for invalid params (ValidateSamplingParams), a negative
// token_index, or an id outside [0, vocab) in a penalty window (only checked
// where the penalties are active, like ApplyPenalties). Needs no GPU.
absl::Status ValidateSampleSpecs(absl::Span<const SampleSpec> specs, int64_t vocab);

// Bytes of the `workspace` LaunchSample needs for n rows (the penalty counts:
// [n, vocab] int32).
size_t SampleWorkspaceBytes(int64_t n, int64_t vocab);

// Samples one token per row. Row r's penalty window is
// history[history_offsets[r], history_offsets[r + 1]) (most recent last; the
// kernel uses at most its last params[r].penalty_window tokens).
// tokens[r] is the sampled id, or -1 where the CPU Sampler would have
// returned INVALID_ARGUMENT for the row: a NaN or +inf logit, every logit
// -inf, or a window id outside [0, vocab) (ValidateSampleSpecs catches the
// last on the host). chosen_logprobs[r] (optional: nullptr skips it) is the
// raw log-softmax of the chosen token, from the logits before penalties and
// temperature, as LogprobsCalculator's `chosen`; NaN for a -1 row.
// Params must be valid (ValidateSampleSpecs). INVALID_ARGUMENT before any
// launch for null pointers, n outside [0, 2^31), vocab outside
// [1, kMaxSampleVocab] or a workspace smaller than SampleWorkspaceBytes.
// The logits are not modified.
absl::Status LaunchSample(const float* logits,  // [n, vocab] (row stride vocab), fp32
                          int64_t n, int64_t vocab,
                          const DeviceSamplingParams* params,  // [n]
                          const int32_t* history,              // [history_offsets[n]], int32 token ids
                          const int32_t* history_offsets,      // [n + 1], int32, non-decreasing, [0] = 0
                          int32_t* tokens,                     // [n], int32
                          float* chosen_logprobs,              // [n], fp32, or nullptr
                          void* workspace, size_t workspace_bytes, cudaStream_t stream);

// The backend's sampler for decode steps: stages each step's SampleSpecs
// through a pinned buffer with one cudaMemcpyAsync, launches LaunchSample on
// the logits left on the device, and copies back n tokens and logprobs.
// Use one stream for all calls. Not thread-safe (one scheduler thread).
class DeviceSampler {
 public:
  DeviceSampler() = default;  // empty: assign from Create before use

  // Buffers for up to max_rows rows of `vocab` logits.
  static absl::StatusOr<DeviceSampler> Create(int64_t max_rows, int64_t vocab);

  // Validates (ValidateSampleSpecs) and uploads specs: params, and the
  // penalty window of each row whose penalties are active. Waits only for
  // the previous Stage's upload to have left the pinned buffer. Grows the
  // history buffer when the windows do not fit (then waits for `stream`).
  absl::Status Stage(absl::Span<const SampleSpec> specs, cudaStream_t stream);

  // Samples row r of `logits` with the r-th staged spec; n must be the
  // number of staged specs and vocab the one given to Create.
  absl::Status Sample(const float* logits,  // [n, vocab], fp32, device
                      int64_t n, int64_t vocab, cudaStream_t stream);

  // Waits for `stream` and copies the last Sample's results: tokens [n],
  // chosen_logprobs [n] or empty. INVALID_ARGUMENT naming the first row the
  // kernel rejected (NaN or +inf logit, or every logit -inf).
  absl::Status CopyResults(absl::Span<int32_t> tokens, absl::Span<float> chosen_logprobs, cudaStream_t stream);

  // The staged device arrays and the result arrays (for tests and callers
  // that keep the results on the device).
  const DeviceSamplingParams* device_params() const { return params_; }
  const int32_t* device_history() const { return history_; }
  const int32_t* device_history_offsets() const { return history_offsets_; }
  int32_t* device_tokens() const { return tokens_; }
  float* device_logprobs() const { return logprobs_; }

 private:
  struct PinnedDeleter {
    void operator()(uint8_t* p) const { (void)cudaFreeHost(p); }
  };
  struct EventDeleter {
    void operator()(cudaEvent_t e) const { (void)cudaEventDestroy(e); }
  };
  using PinnedBytes = std::unique_ptr<uint8_t, PinnedDeleter>;

  // Makes room for `history_tokens` staged history ids.
  absl::Status ReserveHistory(int64_t history_tokens, cudaStream_t stream);

  int64_t max_rows_ = 0;
  int64_t vocab_ = 0;
  int64_t history_capacity_ = 0;     // history ids the input buffers hold
  int64_t staged_rows_ = -1;         // rows of the last Stage; -1 before any
  int64_t sampled_rows_ = -1;        // rows of the last Sample; -1 before any
  PinnedBytes staging_;              // host mirror of inputs_
  DeviceBuffer<uint8_t> inputs_;     // params [rows], offsets [rows + 1], history [..], packed per Stage
  DeviceBuffer<int32_t> workspace_;  // [max_rows, vocab]
  DeviceBuffer<uint8_t> outputs_;    // tokens [max_rows] int32, logprobs [max_rows] fp32
  PinnedBytes results_;              // host mirror of outputs_
  std::unique_ptr<CUevent_st, EventDeleter> upload_done_;  // recorded after each Stage's copy
  const DeviceSamplingParams* params_ = nullptr;           // into inputs_
  const int32_t* history_offsets_ = nullptr;               // into inputs_
  const int32_t* history_ = nullptr;                       // into inputs_
  int32_t* tokens_ = nullptr;                              // into outputs_
  float* logprobs_ = nullptr;                              // into outputs_
};

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_SAMPLING_H_

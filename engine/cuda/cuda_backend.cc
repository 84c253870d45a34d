#include "engine/cuda/cuda_backend.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/cpu/ops.h"
#include "engine/cuda/cuda_forward.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/cuda_weights.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/sampling.h"
#include "engine/model/backend_arguments.h"
#include "engine/model/decay.h"
#include "engine/model/tensor_names.h"
#include "engine/util/status_macros.h"

namespace supra {
namespace {

using cuda::CudaForward;

class CudaBackend final : public Backend {
 public:
  CudaBackend(const ModelConfig& config, const CudaBackendOptions& options)
      : config_(config), options_(options), args_(config, options.num_slots) {}
  ~CudaBackend() override {
    for (auto& [n, exec] : graphs_) cudaGraphExecDestroy(exec);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  // Everything but the weights: stream, forward buffers, state pool.
  absl::Status Init() {
    CUDA_RETURN_IF_ERROR(cudaSetDevice(options_.device));
    CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    return absl::OkStatus();
  }

  absl::Status Finish(cuda::CudaWeights weights) {
    weights_ = std::move(weights);
    ASSIGN_OR_RETURN(forward_, CudaForward::Create(config_, &weights_, options_, stream_));
    const int64_t rows = std::max<int64_t>(options_.max_batch, 1);
    ASSIGN_OR_RETURN(sampler_, cuda::DeviceSampler::Create(rows, config_.vocab_size));
    return absl::OkStatus();
  }

  cudaStream_t stream() const { return stream_; }

  std::string_view name() const override { return "cuda"; }
  const ModelConfig& config() const override { return config_; }
  int num_slots() const override { return options_.num_slots; }

  absl::Status ResetSlot(int32_t slot) override {
    RETURN_IF_ERROR(cuda::CheckDeviceUsable());
    RETURN_IF_ERROR(args_.CheckSlot(slot, "slot"));
    RETURN_IF_ERROR(forward_->ZeroSlot(slot));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return absl::OkStatus();
  }

  absl::Status CopySlot(int32_t src, int32_t dst) override {
    RETURN_IF_ERROR(cuda::CheckDeviceUsable());
    RETURN_IF_ERROR(args_.CheckSlot(src, "source slot"));
    RETURN_IF_ERROR(args_.CheckSlot(dst, "destination slot"));
    if (src == dst) return absl::OkStatus();
    RETURN_IF_ERROR(forward_->CopySlot(src, dst));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return absl::OkStatus();
  }

  absl::Status ReadState(int32_t slot, absl::Span<float> state) override {
    RETURN_IF_ERROR(cuda::CheckDeviceUsable());
    RETURN_IF_ERROR(args_.CheckSlot(slot, "slot"));
    RETURN_IF_ERROR(args_.CheckStateSize(state.size()));
    RETURN_IF_ERROR(forward_->ReadSlot(slot, state.data()));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return absl::OkStatus();
  }

  absl::Status WriteState(int32_t slot, absl::Span<const float> state) override {
    RETURN_IF_ERROR(cuda::CheckDeviceUsable());
    RETURN_IF_ERROR(args_.CheckSlot(slot, "slot"));
    RETURN_IF_ERROR(args_.CheckStateSize(state.size()));
    RETURN_IF_ERROR(forward_->WriteSlot(slot, state.data()));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return absl::OkStatus();
  }

  absl::Status Decode(const DecodeBatch& batch, absl::Span<float> logits) override {
    RETURN_IF_ERROR(CheckDecodeBatch(batch, &logits));
    if (batch.slots.empty()) return absl::OkStatus();
    RETURN_IF_ERROR(RunDecode(batch));
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits.data(), forward_->logits(), logits.size() * sizeof(float),
                                         cudaMemcpyDeviceToHost, stream_));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return absl::OkStatus();
  }

  absl::Status DecodeAndSample(const DecodeBatch& batch, absl::Span<const SampleSpec> specs,
                               absl::Span<int32_t> tokens, absl::Span<float> chosen_logprobs) override {
    const size_t n = batch.slots.size();
    RETURN_IF_ERROR(CheckDecodeBatch(batch, nullptr));
    if (specs.size() != n || tokens.size() != n || (!chosen_logprobs.empty() && chosen_logprobs.size() != n)) {
      return absl::InvalidArgumentError(absl::StrCat("DecodeAndSample: ", n, " sequences but ", specs.size(),
                                                     " sampling specs, ", tokens.size(), " token outputs and ",
                                                     chosen_logprobs.size(), " logprob outputs"));
    }
    for (const SampleSpec& spec : specs) RETURN_IF_ERROR(ValidateSamplingParams(spec.params));
    if (n == 0) return absl::OkStatus();
    // The sampling inputs go up before the step so that one sync ends it.
    RETURN_IF_ERROR(sampler_.Stage(specs, stream_));
    RETURN_IF_ERROR(RunDecode(batch));
    RETURN_IF_ERROR(sampler_.Sample(forward_->logits(), static_cast<int64_t>(n), config_.vocab_size, stream_));
    RETURN_IF_ERROR(sampler_.CopyResults(tokens, chosen_logprobs, stream_));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return absl::OkStatus();
  }

  absl::Status Prefill(absl::Span<const PrefillSequence> sequences, int chunk_size, LogitsOutput output,
                       absl::Span<float> logits) override {
    RETURN_IF_ERROR(cuda::CheckDeviceUsable());
    RETURN_IF_ERROR(args_.CheckPrefill(sequences, chunk_size, output, logits.size()));
    const int64_t vocab = config_.vocab_size;
    const size_t n = sequences.size();
    if (n == 0) return absl::OkStatus();

    // Passes of at most max_prefill_tokens rows. Each pass takes, in order, the
    // next unprocessed tokens of the sequences; a sequence that does not fit
    // continues in the next pass (its state carries over in its slot).
    const int64_t max_rows = forward_->max_rows();
    std::vector<int64_t> done(n, 0);
    std::vector<int64_t> first_logit_row(n, 0);  // kAll: row of each sequence's first token
    for (size_t i = 1; i < n; ++i) {
      first_logit_row[i] = first_logit_row[i - 1] + static_cast<int64_t>(sequences[i - 1].tokens.size());
    }
    for (;;) {
      pass_.clear();
      int64_t rows = 0;
      for (size_t i = 0; i < n && rows < max_rows; ++i) {
        const int64_t left = static_cast<int64_t>(sequences[i].tokens.size()) - done[i];
        if (left == 0) continue;
        const int64_t take = std::min(left, max_rows - rows);
        pass_.push_back(cuda::PassSequence{sequences[i].slot, sequences[i].tokens.subspan(done[i], take),
                                           sequences[i].start_position + done[i], rows});
        pass_index_.resize(pass_.size());
        pass_index_.back() = i;
        rows += take;
      }
      if (pass_.empty()) break;
      const bool all_logits = output == LogitsOutput::kAll;
      RETURN_IF_ERROR(forward_->Prefill(pass_, static_cast<int64_t>(chunk_size), all_logits));
      // Logits: every row (kAll) or the last row of sequences that end in this pass.
      for (size_t p = 0; p < pass_.size(); ++p) {
        const size_t i = pass_index_[p];
        const int64_t len = static_cast<int64_t>(pass_[p].tokens.size());
        if (all_logits) {
          CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits.data() + (first_logit_row[i] + done[i]) * vocab,
                                               forward_->logits() + pass_[p].row_begin * vocab,
                                               static_cast<size_t>(len * vocab) * sizeof(float),
                                               cudaMemcpyDeviceToHost, stream_));
        } else if (done[i] + len == static_cast<int64_t>(sequences[i].tokens.size())) {
          CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits.data() + static_cast<int64_t>(i) * vocab,
                                               forward_->last_logits(p), static_cast<size_t>(vocab) * sizeof(float),
                                               cudaMemcpyDeviceToHost, stream_));
        }
        done[i] += len;
      }
      CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    }
    return absl::OkStatus();
  }

 private:
  // Runs the decode forward for `batch` (already checked), leaving logits on
  // the device. With cuda_graphs, each batch size is captured once.
  absl::Status RunDecode(const DecodeBatch& batch) {
    const int64_t n = static_cast<int64_t>(batch.slots.size());
    RETURN_IF_ERROR(forward_->StageDecodeInputs(batch));
    if (!options_.cuda_graphs) return forward_->DecodeForward(n);
    auto it = graphs_.find(n);
    if (it == graphs_.end()) {
      cudaGraph_t graph = nullptr;
      CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
      const absl::Status captured = forward_->DecodeForward(n);
      const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
      if (!captured.ok()) {
        if (graph != nullptr) cudaGraphDestroy(graph);
        return captured;
      }
      CUDA_RETURN_IF_ERROR(end);
      cudaGraphExec_t exec = nullptr;
      const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      CUDA_RETURN_IF_ERROR(instantiated);
      it = graphs_.emplace(n, exec).first;
    }
    CUDA_RETURN_IF_ERROR(cudaGraphLaunch(it->second, stream_));
    return absl::OkStatus();
  }

  absl::Status CheckDecodeBatch(const DecodeBatch& batch, const absl::Span<float>* logits) {
    RETURN_IF_ERROR(cuda::CheckDeviceUsable());
    if (static_cast<int64_t>(batch.slots.size()) > options_.max_batch) {
      return absl::InvalidArgumentError(
          absl::StrCat("decode batch of ", batch.slots.size(), " sequences exceeds max_batch ", options_.max_batch));
    }
    return args_.CheckDecode(batch, logits);
  }

  ModelConfig config_;
  CudaBackendOptions options_;
  cudaStream_t stream_ = nullptr;
  cuda::CudaWeights weights_;
  std::unique_ptr<CudaForward> forward_;
  cuda::DeviceSampler sampler_;
  std::map<int64_t, cudaGraphExec_t> graphs_;  // decode graph per batch size
  BackendArguments args_;
  std::vector<cuda::PassSequence> pass_;       // scratch of Prefill
  std::vector<size_t> pass_index_;             // sequence index of each pass entry
};

absl::Status CheckOptions(const CudaBackendOptions& o) {
  if (o.num_slots < 1 || o.max_batch < 1 || o.max_prefill_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA backend: num_slots (", o.num_slots, "), max_batch (",
                                                   o.max_batch, ") and max_prefill_tokens (", o.max_prefill_tokens,
                                                   ") must be positive"));
  }
  return absl::OkStatus();
}

}  // namespace

bool CudaDeviceAvailable() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const ModelConfig& config, const Checkpoint& checkpoint,
                                                           const CudaBackendOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  RETURN_IF_ERROR(ValidateCheckpoint(config, checkpoint));
  if (!CudaDeviceAvailable()) return absl::UnavailableError("no CUDA device is visible to this process");
  auto backend = std::make_unique<CudaBackend>(config, options);
  RETURN_IF_ERROR(backend->Init());
  ASSIGN_OR_RETURN(cuda::CudaWeights weights, cuda::UploadWeights(config, checkpoint, backend->stream()));
  RETURN_IF_ERROR(backend->Finish(std::move(weights)));
  return backend;
}

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackendWithRandomWeights(const ModelConfig& config,
                                                                            const CudaBackendOptions& options,
                                                                            uint64_t seed) {
  RETURN_IF_ERROR(CheckOptions(options));
  if (!CudaDeviceAvailable()) return absl::UnavailableError("no CUDA device is visible to this process");
  auto backend = std::make_unique<CudaBackend>(config, options);
  RETURN_IF_ERROR(backend->Init());
  ASSIGN_OR_RETURN(cuda::CudaWeights weights, cuda::RandomWeights(config, seed, backend->stream()));
  RETURN_IF_ERROR(backend->Finish(std::move(weights)));
  return backend;
}

}  // namespace supra

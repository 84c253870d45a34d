#include "engine/cuda/cuda_weights.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/random_fill.h"
#include "engine/cuda/w12_layout.h"
#include "engine/model/tensor_names.h"
#include "engine/util/dtype.h"
#include "engine/util/status_macros.h"

namespace supra::cuda {
namespace {

enum class Kind { kMatrix, kVector };  // bf16 matrices, fp32 vectors

struct Placement {
  std::string name;     // tensor name in the checkpoint (for tied weights: where it is stored)
  Kind kind;
  int64_t numel = 0;
  int64_t fan_in = 1;   // for random init; the row length of a matrix
  size_t offset = 0;    // bytes into the arena
  // w12: rows stored in the interleaved order of w12_layout.h (ffn = rows / 2).
  bool interleave_w12 = false;
};

constexpr size_t kAlign = 256;

size_t AlignUp(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// Lays out every tensor the model reads in one arena; returns the arena size.
size_t Layout(const ModelConfig& config, const std::string& embedding_name, std::vector<Placement>* placements) {
  size_t offset = 0;
  for (const ExpectedTensor& t : ExpectedTensors(config)) {
    Placement p;
    p.name = t.name == "model.tok_embeddings.weight" ? embedding_name : t.name;
    p.kind = t.shape.size() == 2 ? Kind::kMatrix : Kind::kVector;
    p.numel = 1;
    for (int64_t d : t.shape) p.numel *= d;
    p.fan_in = t.shape.back();
    p.interleave_w12 = t.name.ends_with(".feed_forward.w12.weight");
    p.offset = offset;
    offset = AlignUp(offset + static_cast<size_t>(p.numel) * (p.kind == Kind::kMatrix ? 2 : 4));
    placements->push_back(std::move(p));
  }
  return offset;
}

// Points the CudaWeights fields into the arena.
void Bind(const ModelConfig& config, const std::vector<Placement>& placements, CudaWeights* w) {
  auto* base = w->arena.data();
  auto matrix = [&](const std::string& name) -> const __nv_bfloat16* {
    for (const Placement& p : placements) {
      if (p.name == name) return reinterpret_cast<const __nv_bfloat16*>(base + p.offset);
    }
    return nullptr;
  };
  auto vector = [&](const std::string& name) -> const float* {
    for (const Placement& p : placements) {
      if (p.name == name) return reinterpret_cast<const float*>(base + p.offset);
    }
    return nullptr;
  };
  w->embedding = reinterpret_cast<const __nv_bfloat16*>(base + placements.front().offset);
  w->post_embed_norm = vector("model.post_embed_norm.weight");
  w->final_norm = vector("model.norm.weight");
  w->output = config.weight_tying ? w->embedding : matrix("model.output.weight");
  w->layers.resize(config.n_layers);
  for (int i = 0; i < config.n_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    CudaLayerWeights& l = w->layers[i];
    l.attention_norm = vector(p + "attention_norm.weight");
    l.in_proj = matrix(p + "attention.in_proj.weight");
    l.embed_q = matrix(p + "attention._totrain_embed.weight");
    l.embed_q_bias = vector(p + "attention._totrain_embed.bias");
    const bool separate_kv = config.n_heads_kv != config.n_heads;
    l.embed_kv = separate_kv ? matrix(p + "attention._totrain_embed_kv.weight") : l.embed_q;
    l.embed_kv_bias = separate_kv ? vector(p + "attention._totrain_embed_kv.bias") : l.embed_q_bias;
    l.q_norm = vector(p + "attention._totrain_q_norm.weight");
    l.k_norm = vector(p + "attention._totrain_k_norm.weight");
    l.out_proj = matrix(p + "attention.out_proj.weight");
    l.ffn_norm = vector(p + "ffn_norm.weight");
    l.w12 = matrix(p + "feed_forward.w12.weight");
    l.w3 = matrix(p + "feed_forward.w3.weight");
  }
  // Bytes a decode step reads from the matrices (the embedding contributes only
  // the gathered rows, counted by the caller).
  w->matrix_bytes = 0;
  for (const Placement& p : placements) {
    if (p.kind == Kind::kMatrix && p.name != placements.front().name) w->matrix_bytes += p.numel * 2;
  }
  if (config.weight_tying) w->matrix_bytes += placements.front().numel * 2;  // the head reads it too
}

absl::StatusOr<CudaWeights> Allocate(size_t bytes) {
  CudaWeights w;
  auto arena = DeviceBuffer<uint8_t>::Allocate(bytes, "model weights");
  if (!arena.ok()) return arena.status();
  w.arena = *std::move(arena);
  return w;
}

// A pinned host staging buffer, freed on scope exit.
class PinnedStaging {
 public:
  ~PinnedStaging() {
    if (data_ != nullptr) cudaFreeHost(data_);
  }
  absl::Status Allocate(size_t bytes) {
    CUDA_RETURN_IF_ERROR(cudaMallocHost(&data_, bytes));
    bytes_ = bytes;
    return absl::OkStatus();
  }
  std::byte* data() const { return static_cast<std::byte*>(data_); }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace

absl::StatusOr<CudaWeights> UploadWeights(const ModelConfig& config, const Checkpoint& checkpoint,
                                          cudaStream_t stream) {
  std::vector<Placement> placements;
  const size_t bytes = Layout(config, TiedEmbeddingName(checkpoint), &placements);
  auto weights = Allocate(bytes);
  if (!weights.ok()) return weights.status();

  constexpr size_t kStagingBytes = size_t{64} << 20;
  PinnedStaging staging;
  if (auto s = staging.Allocate(kStagingBytes); !s.ok()) return s;
  std::vector<float> scratch;  // fp32 conversion of one staging chunk
  for (const Placement& p : placements) {
    const TensorView* t = checkpoint.Find(p.name);
    if (t == nullptr || t->numel() != p.numel) {
      return absl::InvalidArgumentError(absl::StrCat("weights: tensor ", p.name, " is missing or has the wrong size"));
    }
    const size_t out_size = p.kind == Kind::kMatrix ? 2 : 4;
    const size_t in_size = DTypeSize(t->dtype);
    // Converts `count` elements from src into the staging buffer at element `at`.
    auto convert = [&](const std::byte* src, size_t count, size_t at) -> absl::Status {
      std::byte* dst = staging.data() + at * out_size;
      if (p.kind == Kind::kMatrix && t->dtype == DType::kBF16) {
        std::memcpy(dst, src, count * 2);
        return absl::OkStatus();
      }
      scratch.resize(count);
      if (!ConvertToFloat32(t->dtype, src, count, scratch.data())) {
        return absl::InvalidArgumentError(
            absl::StrCat("weights: tensor ", p.name, " has dtype ", std::string(DTypeName(t->dtype))));
      }
      if (p.kind == Kind::kVector) {
        std::memcpy(dst, scratch.data(), count * 4);
      } else {
        auto* out = reinterpret_cast<uint16_t*>(dst);
        for (size_t i = 0; i < count; ++i) out[i] = FloatToBF16(scratch[i]);
      }
      return absl::OkStatus();
    };
    // Chunks of whole rows when rows are reordered (w12), so that each device
    // row is filled from its checkpoint row.
    const int64_t cols = p.interleave_w12 ? p.fan_in : 1;
    const int64_t ffn = p.numel / cols / 2;
    const int64_t per_chunk = static_cast<int64_t>(kStagingBytes / out_size) / cols * cols;
    for (int64_t begin = 0; begin < p.numel; begin += per_chunk) {
      const int64_t count = std::min<int64_t>(per_chunk, p.numel - begin);
      if (p.interleave_w12) {
        for (int64_t row = begin / cols; row < (begin + count) / cols; ++row) {
          const int64_t source_row = CheckpointW12Row(row, ffn);
          RETURN_IF_ERROR(convert(t->data + static_cast<size_t>(source_row * cols) * in_size, static_cast<size_t>(cols),
                                  static_cast<size_t>(row * cols - begin)));
        }
      } else {
        RETURN_IF_ERROR(convert(t->data + static_cast<size_t>(begin) * in_size, static_cast<size_t>(count), 0));
      }
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(weights->arena.data() + p.offset + static_cast<size_t>(begin) * out_size,
                                           staging.data(), static_cast<size_t>(count) * out_size,
                                           cudaMemcpyHostToDevice, stream));
      CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));  // the staging buffer is reused next
    }
  }
  Bind(config, placements, &*weights);
  return weights;
}

absl::StatusOr<CudaWeights> RandomWeights(const ModelConfig& config, uint64_t seed, cudaStream_t stream) {
  std::vector<Placement> placements;
  const size_t bytes = Layout(config, "model.tok_embeddings.weight", &placements);
  auto weights = Allocate(bytes);
  if (!weights.ok()) return weights.status();
  uint64_t tensor_seed = seed;
  for (const Placement& p : placements) {
    ++tensor_seed;
    uint8_t* at = weights->arena.data() + p.offset;
    if (p.kind == Kind::kMatrix) {
      // Uniform with the variance of N(0, 1/fan_in): scale sqrt(3 / fan_in).
      const float scale = std::sqrt(3.0f / static_cast<float>(p.fan_in));
      if (auto s = LaunchFillUniformBf16(reinterpret_cast<__nv_bfloat16*>(at), p.numel, tensor_seed, 0.0f, scale,
                                         stream);
          !s.ok()) {
        return s;
      }
    } else {
      const bool is_bias = p.name.ends_with(".bias");
      if (auto s = LaunchFillUniformF32(reinterpret_cast<float*>(at), p.numel, tensor_seed, is_bias ? 0.0f : 1.0f,
                                        is_bias ? 0.1f : 0.2f, stream);
          !s.ok()) {
        return s;
      }
    }
  }
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  Bind(config, placements, &*weights);
  return weights;
}

}  // namespace supra::cuda

#include "tests/engine/testing/random_model.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/model/tensor_names.h"

namespace supra::testing {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<float> RandomValues(const ExpectedTensor& tensor, std::mt19937_64& rng) {
  int64_t numel = 1;
  for (int64_t d : tensor.shape) numel *= d;
  std::vector<float> values(numel);
  if (EndsWith(tensor.name, "norm.weight")) {
    std::uniform_real_distribution<float> dist(0.8f, 1.2f);
    for (float& v : values) v = dist(rng);
  } else if (EndsWith(tensor.name, ".bias")) {
    std::uniform_real_distribution<float> dist(-0.1f, 0.1f);
    for (float& v : values) v = dist(rng);
  } else {
    std::normal_distribution<float> dist(0.0f, 1.0f / std::sqrt(static_cast<float>(tensor.shape.back())));
    for (float& v : values) v = dist(rng);
  }
  return values;
}

// The bytes of `values` in `dtype`, little-endian as on every host we run.
std::vector<std::byte> Encode(const std::vector<float>& values, DType dtype) {
  std::vector<std::byte> bytes(values.size() * DTypeSize(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(bytes.data() + 4 * i, &values[i], 4);
    } else {
      const uint16_t bits = dtype == DType::kBF16 ? FloatToBF16(values[i]) : FloatToHalf(values[i]);
      std::memcpy(bytes.data() + 2 * i, &bits, 2);
    }
  }
  return bytes;
}

}  // namespace

Checkpoint MakeRandomCheckpoint(const ModelConfig& config, const RandomModelOptions& options) {
  std::mt19937_64 rng(options.seed);
  const std::vector<ExpectedTensor> expected = ExpectedTensors(config);
  // Lay every tensor out in one owned buffer.
  std::vector<std::vector<std::byte>> encoded;
  size_t total = 0;
  for (const ExpectedTensor& t : expected) {
    encoded.push_back(Encode(RandomValues(t, rng), options.dtype));
    total += encoded.back().size() + 16;
  }
  auto buffer = std::make_shared<std::vector<std::byte>>(total);
  Checkpoint checkpoint;
  size_t offset = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    // 8-byte aligned, plus one byte when asked for unaligned data.
    offset = (offset + 7) / 8 * 8 + (options.unaligned ? 1 : 0);
    std::memcpy(buffer->data() + offset, encoded[i].data(), encoded[i].size());
    TensorView view{.dtype = options.dtype,
                    .shape = expected[i].shape,
                    .data = buffer->data() + offset,
                    .nbytes = encoded[i].size(),
                    .source = "random"};
    offset += encoded[i].size();
    std::string name = expected[i].name;
    if (config.weight_tying && name == "model.tok_embeddings.weight") {
      if (options.tied_storage != TiedStorage::kEmbedding) {
        (void)checkpoint.Add("model.output.weight", view);
      }
      if (options.tied_storage == TiedStorage::kOutput) continue;
    }
    (void)checkpoint.Add(std::move(name), std::move(view));
  }
  checkpoint.KeepAlive(buffer);
  checkpoint.set_format("random (in memory)");
  return checkpoint;
}

ModelConfig TinyConfig(int dim, int n_layers, int n_heads, int n_heads_kv, int v_head_dim, int ffn, int vocab) {
  ModelConfig c;
  c.dim = dim;
  c.n_layers = n_layers;
  c.n_heads = n_heads;
  c.n_heads_kv = n_heads_kv;
  c.qk_head_dim = dim / n_heads;
  c.v_head_dim = v_head_dim;
  c.intermediate_dim_ffn = ffn;
  c.vocab_size = vocab;
  c.use_decay = true;
  c.seq_len = 2048;
  return c;
}

}  // namespace supra::testing

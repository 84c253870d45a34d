#include "engine/model/tensor_names.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace supra {
namespace {

using ::testing::HasSubstr;

ModelConfig SmallGqa() {
  ModelConfig c;
  c.dim = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_heads_kv = 2;
  c.qk_head_dim = 8;
  c.v_head_dim = 6;
  c.intermediate_dim_ffn = 48;
  c.vocab_size = 50;
  return c;
}

// A checkpoint holding `tensors` as fp32, each filled with a distinct value.
Checkpoint MakeCheckpoint(const std::vector<ExpectedTensor>& tensors) {
  Checkpoint ckpt;
  auto storage = std::make_shared<std::vector<std::vector<float>>>();
  for (size_t i = 0; i < tensors.size(); ++i) {
    int64_t n = 1;
    for (int64_t d : tensors[i].shape) n *= d;
    storage->emplace_back(n, 0.5f + static_cast<float>(i));
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    TensorView v;
    v.dtype = DType::kF32;
    v.shape = tensors[i].shape;
    v.data = reinterpret_cast<const std::byte*>((*storage)[i].data());
    v.nbytes = (*storage)[i].size() * sizeof(float);
    v.source = "memory";
    EXPECT_TRUE(ckpt.Add(tensors[i].name, v).ok());
  }
  ckpt.KeepAlive(storage);
  return ckpt;
}

TEST(TensorNamesTest, MistralSupraShapes) {
  ModelConfig c;
  c.dim = 4096;
  c.n_layers = 32;
  c.n_heads = 32;
  c.n_heads_kv = 8;
  c.qk_head_dim = 128;
  c.v_head_dim = 128;
  c.intermediate_dim_ffn = 14336;
  c.vocab_size = 32000;
  const auto tensors = ExpectedTensors(c);
  auto shape_of = [&](const std::string& name) {
    for (const auto& t : tensors) {
      if (t.name == name) return t.shape;
    }
    return std::vector<int64_t>{};
  };
  EXPECT_EQ(shape_of("model.tok_embeddings.weight"), (std::vector<int64_t>{32000, 4096}));
  EXPECT_EQ(shape_of("model.layers.0.attention.in_proj.weight"), (std::vector<int64_t>{6144, 4096}));
  EXPECT_EQ(shape_of("model.layers.31.attention._totrain_embed.weight"), (std::vector<int64_t>{4096, 4096}));
  EXPECT_EQ(shape_of("model.layers.31.attention._totrain_embed_kv.weight"), (std::vector<int64_t>{1024, 1024}));
  EXPECT_EQ(shape_of("model.layers.31.attention._totrain_embed_kv.bias"), (std::vector<int64_t>{1024}));
  EXPECT_EQ(shape_of("model.layers.7.attention.out_proj.weight"), (std::vector<int64_t>{4096, 4096}));
  EXPECT_EQ(shape_of("model.layers.7.feed_forward.w12.weight"), (std::vector<int64_t>{28672, 4096}));
  EXPECT_EQ(shape_of("model.layers.7.feed_forward.w3.weight"), (std::vector<int64_t>{4096, 14336}));
  EXPECT_EQ(shape_of("model.output.weight"), (std::vector<int64_t>{32000, 4096}));
  EXPECT_TRUE(shape_of("model.layers.0.attention._totrain_q_norm.weight").empty());
  // 1 embedding + 32 * 10 per layer + final norm + output; 7.81 G parameters (supra-model.md §6).
  EXPECT_EQ(tensors.size(), 1u + 32 * 10 + 2);
  int64_t params = 0;
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    params += n;
  }
  EXPECT_NEAR(static_cast<double>(params) / 1e9, 7.81, 0.01);
}

TEST(TensorNamesTest, OptionalTensorsFollowTheConfig) {
  ModelConfig c = SmallGqa();
  c.n_heads_kv = c.n_heads;
  c.apply_qk_norm = true;
  c.post_embed_norm = true;
  c.weight_tying = true;
  std::vector<std::string> names;
  for (const auto& t : ExpectedTensors(c)) names.push_back(t.name);
  EXPECT_THAT(names, ::testing::Contains("model.post_embed_norm.weight"));
  EXPECT_THAT(names, ::testing::Contains("model.layers.1.attention._totrain_q_norm.weight"));
  EXPECT_THAT(names, ::testing::Contains("model.layers.1.attention._totrain_k_norm.weight"));
  EXPECT_THAT(names, ::testing::Not(::testing::Contains("model.layers.0.attention._totrain_embed_kv.weight")));
  EXPECT_THAT(names, ::testing::Not(::testing::Contains("model.output.weight")));
}

TEST(TensorNamesTest, CompleteCheckpointValidates) {
  const ModelConfig c = SmallGqa();
  Checkpoint ckpt = MakeCheckpoint(ExpectedTensors(c));
  EXPECT_TRUE(ValidateCheckpoint(c, ckpt).ok());
}

TEST(TensorNamesTest, EveryOffenderIsListed) {
  const ModelConfig c = SmallGqa();
  std::vector<ExpectedTensor> tensors = ExpectedTensors(c);
  std::vector<ExpectedTensor> broken;
  for (auto t : tensors) {
    if (t.name == "model.layers.1.ffn_norm.weight" || t.name == "model.norm.weight") continue;  // missing
    if (t.name == "model.layers.0.attention.in_proj.weight") t.shape = {10, 32};                // wrong shape
    if (t.name == "model.output.weight") t.shape = {32, 50};                                    // transposed
    broken.push_back(t);
  }
  broken.push_back({"model.layers.0.attention.rotary.inv_freq", {4}});  // unexpected
  broken.push_back({"lm_head.weight", {50, 32}});                      // unexpected
  const absl::Status s = ValidateCheckpoint(c, MakeCheckpoint(broken));
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  const std::string m(s.message());
  EXPECT_THAT(m, HasSubstr("missing tensors (2)"));
  EXPECT_THAT(m, HasSubstr("model.layers.1.ffn_norm.weight [32]"));
  EXPECT_THAT(m, HasSubstr("model.norm.weight [32]"));
  EXPECT_THAT(m, HasSubstr("wrong shapes (2)"));
  EXPECT_THAT(m, HasSubstr("model.layers.0.attention.in_proj.weight is [10, 32], expected [60, 32]"));
  EXPECT_THAT(m, HasSubstr("model.output.weight is [32, 50], expected [50, 32]"));
  EXPECT_THAT(m, HasSubstr("unexpected tensors (2)"));
  EXPECT_THAT(m, HasSubstr("model.layers.0.attention.rotary.inv_freq [4]"));
  EXPECT_THAT(m, HasSubstr("lm_head.weight [50, 32]"));
}

TEST(TensorNamesTest, IntegerTensorIsRefused) {
  const ModelConfig c = SmallGqa();
  Checkpoint good = MakeCheckpoint(ExpectedTensors(c));
  Checkpoint ckpt;
  for (const auto& [name, view] : good.tensors()) {
    TensorView v = view;
    if (name == "model.norm.weight") v.dtype = DType::kI32;
    ASSERT_TRUE(ckpt.Add(name, v).ok());
  }
  const absl::Status s = ValidateCheckpoint(c, ckpt);
  EXPECT_THAT(std::string(s.message()), HasSubstr("model.norm.weight is int32"));
}

TEST(TensorNamesTest, TiedWeightsUnderEitherNameOrBoth) {
  ModelConfig c = SmallGqa();
  c.weight_tying = true;
  std::vector<ExpectedTensor> tensors = ExpectedTensors(c);
  {  // embedding only
    Checkpoint ckpt = MakeCheckpoint(tensors);
    EXPECT_TRUE(ValidateCheckpoint(c, ckpt).ok());
    EXPECT_EQ(TiedEmbeddingName(ckpt), "model.tok_embeddings.weight");
  }
  {  // output head only
    std::vector<ExpectedTensor> renamed = tensors;
    renamed.front().name = "model.output.weight";
    Checkpoint ckpt = MakeCheckpoint(renamed);
    EXPECT_TRUE(ValidateCheckpoint(c, ckpt).ok()) << ValidateCheckpoint(c, ckpt);
    EXPECT_EQ(TiedEmbeddingName(ckpt), "model.output.weight");
  }
  {  // both names, one shared buffer (as a PyTorch file stores tied parameters)
    Checkpoint ckpt = MakeCheckpoint(tensors);
    Checkpoint both;
    for (const auto& [name, view] : ckpt.tensors()) ASSERT_TRUE(both.Add(name, view).ok());
    ASSERT_TRUE(both.Add("model.output.weight", *ckpt.Find("model.tok_embeddings.weight")).ok());
    EXPECT_TRUE(ValidateCheckpoint(c, both).ok());
  }
  {  // both names with different contents: refused
    std::vector<ExpectedTensor> with_output = tensors;
    with_output.push_back({"model.output.weight", tensors.front().shape});
    const absl::Status s = ValidateCheckpoint(c, MakeCheckpoint(with_output));
    EXPECT_THAT(std::string(s.message()), HasSubstr("differs from model.tok_embeddings.weight"));
  }
  {  // neither name
    std::vector<ExpectedTensor> none(tensors.begin() + 1, tensors.end());
    const absl::Status s = ValidateCheckpoint(c, MakeCheckpoint(none));
    EXPECT_THAT(std::string(s.message()), HasSubstr("missing tensors (1)"));
  }
}

}  // namespace
}  // namespace supra

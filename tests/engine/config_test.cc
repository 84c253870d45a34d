#include "engine/model/config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace supra {
namespace {

using ::testing::HasSubstr;

// The released Mistral-SUPRA config (supra-model.md §1).
nlohmann::json MistralSupra() {
  return {{"model_type", "openlm"},
          {"dim", 4096},
          {"n_layers", 32},
          {"n_heads", 32},
          {"n_heads_kv", 8},
          {"qk_head_dim", 128},
          {"v_head_dim", 128},
          {"intermediate_dim_ffn", 14336},
          {"vocab_size", 32000},
          {"norm_eps", 1e-5},
          {"norm_type", "rms_norm"},
          {"seq_len", 2048},
          {"weight_tying", false},
          {"apply_qk_norm", false},
          {"attn_name", "linear_attn"},
          {"positional_embedding_type", "rotary"},
          {"ffn_type", "swiglu"},
          {"use_decay", true},
          {"use_retnet_slopes", false},
          {"decay_start", nullptr}};
}

absl::StatusOr<ModelConfig> Parse(const nlohmann::json& j) { return ParseModelConfig(j.dump()); }

TEST(ConfigTest, ParsesMistralSupra) {
  auto c = Parse(MistralSupra());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->dim, 4096);
  EXPECT_EQ(c->n_layers, 32);
  EXPECT_EQ(c->n_heads, 32);
  EXPECT_EQ(c->n_heads_kv, 8);
  EXPECT_EQ(c->head_dim(), 128);
  EXPECT_EQ(c->kv_group(), 4);
  EXPECT_EQ(c->q_width() + c->k_width() + c->v_width(), 6144);
  EXPECT_EQ(c->intermediate_dim_ffn, 14336);
  EXPECT_EQ(c->vocab_size, 32000);
  EXPECT_TRUE(c->use_decay);
  EXPECT_FALSE(c->decay_start.has_value());
  EXPECT_EQ(c->state_numel() * 4, int64_t{64} << 20);  // 64 MiB of fp32 per session
}

TEST(ConfigTest, DefaultsForOptionalFields) {
  nlohmann::json j = MistralSupra();
  for (const char* f : {"norm_eps", "weight_tying", "apply_qk_norm", "positional_embedding_type", "ffn_type",
                        "use_decay", "use_retnet_slopes", "decay_start", "seq_len", "model_type"}) {
    j.erase(f);
  }
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rotary_base_frequency, 10000.0);
  EXPECT_DOUBLE_EQ(c->rotary_scale, 1.0);
  EXPECT_FALSE(c->post_embed_norm);
  EXPECT_FALSE(c->weight_tying);
  EXPECT_FALSE(c->apply_qk_norm);
  EXPECT_FALSE(c->use_decay);
  EXPECT_FALSE(c->use_retnet_slopes);
  EXPECT_FALSE(c->decay_start.has_value());
}

TEST(ConfigTest, ReadsOptionalValues) {
  nlohmann::json j = MistralSupra();
  j["decay_start"] = 0.25;
  j["rotary_base_frequency"] = 500000;
  j["rotary_scale"] = 2.0;
  j["post_embed_norm"] = true;
  j["weight_tying"] = true;
  j["apply_qk_norm"] = true;
  j["ffn_type"] = "swiglu_torch";
  j["some_future_field"] = {1, 2, 3};  // unknown extra fields are accepted
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(*c->decay_start, 0.25);
  EXPECT_DOUBLE_EQ(c->rotary_base_frequency, 500000.0);
  EXPECT_DOUBLE_EQ(c->rotary_scale, 2.0);
  EXPECT_TRUE(c->post_embed_norm);
  EXPECT_TRUE(c->weight_tying);
  EXPECT_TRUE(c->apply_qk_norm);
}

TEST(ConfigTest, EachRequiredFieldIsNamedWhenMissing) {
  for (const char* f : {"dim", "n_layers", "n_heads", "n_heads_kv", "qk_head_dim", "v_head_dim",
                        "intermediate_dim_ffn", "vocab_size", "norm_type", "attn_name"}) {
    nlohmann::json j = MistralSupra();
    j.erase(f);
    auto c = Parse(j);
    ASSERT_FALSE(c.ok()) << f;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(std::string("'") + f + "'"));
    EXPECT_THAT(std::string(c.status().message()), HasSubstr("missing"));
  }
}

TEST(ConfigTest, UnimplementedValuesAreRefusedNamingFieldAndValue) {
  const std::pair<const char*, const char*> cases[] = {{"norm_type", "layer_norm"},
                                                       {"attn_name", "torch_attn"},
                                                       {"positional_embedding_type", "llama_rotary"},
                                                       {"ffn_type", "gelu"},
                                                       {"model_type", "llama"}};
  for (auto [field, value] : cases) {
    nlohmann::json j = MistralSupra();
    j[field] = value;
    auto c = Parse(j);
    ASSERT_FALSE(c.ok()) << field;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(field));
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(value));
  }
}

TEST(ConfigTest, WrongTypesAndRangesAreRefused) {
  const std::pair<const char*, nlohmann::json> cases[] = {
      {"dim", "4096"},      {"dim", 4096.5},       {"dim", 0},           {"n_layers", -1},
      {"vocab_size", true}, {"use_decay", 1},      {"weight_tying", "no"}, {"norm_eps", 0},
      {"norm_eps", -1e-5},  {"decay_start", -0.5}, {"decay_start", "x"}, {"rotary_scale", 0},
      {"dim", 1LL << 40}};
  for (const auto& [field, value] : cases) {
    nlohmann::json j = MistralSupra();
    j[field] = value;
    auto c = Parse(j);
    ASSERT_FALSE(c.ok()) << field << "=" << value.dump();
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(field));
  }
}

TEST(ConfigTest, ShapeRelationsAreChecked) {
  nlohmann::json j = MistralSupra();
  j["n_heads_kv"] = 5;  // does not divide 32
  EXPECT_THAT(std::string(Parse(j).status().message()), HasSubstr("n_heads_kv"));
  j = MistralSupra();
  j["n_heads"] = 24;  // does not divide 4096
  EXPECT_THAT(std::string(Parse(j).status().message()), HasSubstr("n_heads"));
  j = MistralSupra();
  j["qk_head_dim"] = 64;  // rotary needs F == Dh
  EXPECT_THAT(std::string(Parse(j).status().message()), HasSubstr("qk_head_dim"));
  j = MistralSupra();
  j["dim"] = 96;
  j["n_heads"] = 32;  // Dh = 3, odd
  j["n_heads_kv"] = 8;
  j["qk_head_dim"] = 3;
  EXPECT_THAT(std::string(Parse(j).status().message()), HasSubstr("even"));
}

TEST(ConfigTest, MalformedJson) {
  EXPECT_EQ(ParseModelConfig("{\"dim\": ").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseModelConfig("[1, 2]").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseModelConfig("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConfigTest, LoadReportsMissingFileAndPath) {
  auto c = LoadModelConfig("/nonexistent/config.json");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/nonexistent/config.json"));
}

}  // namespace
}  // namespace supra

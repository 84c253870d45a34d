#include "engine/model/config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/util/absl_compat.h"
#include "nlohmann/json.hpp"

namespace supra {
namespace {

using Json = nlohmann::json;

absl::Status FieldError(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("config.json: field '", ToAbsl(field), "' ", ToAbsl(what)));
}

// Reads a required or optional positive integer field.
absl::Status ReadInt(const Json& j, const char* field, bool required, int* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    return required ? FieldError(field, "is required but missing") : absl::OkStatus();
  }
  if (!it->is_number_integer()) {
    return FieldError(field, absl::StrCat("must be an integer, got ", it->dump()));
  }
  const int64_t v = it->get<int64_t>();
  if (v <= 0 || v > std::numeric_limits<int32_t>::max()) {
    return FieldError(field, absl::StrCat("must be a positive integer, got ", v));
  }
  *out = static_cast<int>(v);
  return absl::OkStatus();
}

absl::Status ReadBool(const Json& j, const char* field, bool* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) return FieldError(field, absl::StrCat("must be true or false, got ", it->dump()));
  *out = it->get<bool>();
  return absl::OkStatus();
}

// A positive finite number; `present` tells whether the field was set.
absl::Status ReadPositive(const Json& j, const char* field, double* out, bool* present = nullptr) {
  if (present != nullptr) *present = false;
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number()) return FieldError(field, absl::StrCat("must be a number, got ", it->dump()));
  const double v = it->get<double>();
  if (!std::isfinite(v) || v <= 0) {
    return FieldError(field, absl::StrCat("must be a positive finite number, got ", it->dump()));
  }
  *out = v;
  if (present != nullptr) *present = true;
  return absl::OkStatus();
}

// A string field that must take one of `accepted` values; `required` or
// defaulting to accepted[0].
absl::Status CheckChoice(const Json& j, const char* field, bool required,
                         std::initializer_list<std::string_view> accepted) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    return required ? FieldError(field, "is required but missing") : absl::OkStatus();
  }
  if (!it->is_string()) return FieldError(field, absl::StrCat("must be a string, got ", it->dump()));
  const std::string value = it->get<std::string>();
  std::string supported;
  for (std::string_view a : accepted) {
    if (value == a) return absl::OkStatus();
    absl::StrAppend(&supported, supported.empty() ? "" : ", ", ToAbsl(a));
  }
  return FieldError(field, absl::StrCat("has value '", value, "', which this engine does not implement (supported: ",
                                        supported, ")"));
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text) {
  Json j = Json::parse(json_text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("config.json: not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("config.json: the top level must be a JSON object");

  ModelConfig c;
  if (auto status = CheckChoice(j, "model_type", false, {"openlm"}); !status.ok()) return status;
  for (auto [field, out] : {std::pair{"dim", &c.dim}, {"n_layers", &c.n_layers}, {"n_heads", &c.n_heads},
                            {"n_heads_kv", &c.n_heads_kv}, {"qk_head_dim", &c.qk_head_dim},
                            {"v_head_dim", &c.v_head_dim}, {"intermediate_dim_ffn", &c.intermediate_dim_ffn},
                            {"vocab_size", &c.vocab_size}}) {
    if (auto status = ReadInt(j, field, /*required=*/true, out); !status.ok()) return status;
  }
  if (auto status = ReadInt(j, "seq_len", false, &c.seq_len); !status.ok()) return status;
  if (auto status = CheckChoice(j, "norm_type", true, {"rms_norm"}); !status.ok()) return status;
  if (auto status = CheckChoice(j, "attn_name", true, {"linear_attn"}); !status.ok()) return status;
  if (auto status = CheckChoice(j, "positional_embedding_type", false, {"rotary"}); !status.ok()) return status;
  if (auto status = CheckChoice(j, "ffn_type", false, {"swiglu", "swiglu_torch"}); !status.ok()) return status;

  for (auto [field, out] : {std::pair{"post_embed_norm", &c.post_embed_norm}, {"weight_tying", &c.weight_tying},
                            {"apply_qk_norm", &c.apply_qk_norm}, {"use_decay", &c.use_decay},
                            {"use_retnet_slopes", &c.use_retnet_slopes}}) {
    if (auto status = ReadBool(j, field, out); !status.ok()) return status;
  }
  if (auto status = ReadPositive(j, "norm_eps", &c.norm_eps); !status.ok()) return status;
  if (auto status = ReadPositive(j, "rotary_base_frequency", &c.rotary_base_frequency); !status.ok()) return status;
  if (auto status = ReadPositive(j, "rotary_scale", &c.rotary_scale); !status.ok()) return status;
  double decay_start = 0;
  bool has_decay_start = false;
  if (auto status = ReadPositive(j, "decay_start", &decay_start, &has_decay_start); !status.ok()) return status;
  if (has_decay_start) c.decay_start = decay_start;

  // Shape relations the model needs.
  if (c.dim % c.n_heads != 0) {
    return FieldError("n_heads", absl::StrCat("(", c.n_heads, ") must divide dim (", c.dim, ")"));
  }
  if (c.n_heads % c.n_heads_kv != 0) {
    return FieldError("n_heads_kv", absl::StrCat("(", c.n_heads_kv, ") must divide n_heads (", c.n_heads, ")"));
  }
  if (c.qk_head_dim != c.head_dim()) {
    return FieldError("qk_head_dim", absl::StrCat("(", c.qk_head_dim, ") must equal dim / n_heads (", c.head_dim(),
                                                  ") for rotary embeddings"));
  }
  if (c.head_dim() % 2 != 0) {
    return FieldError("dim", absl::StrCat("dim / n_heads (", c.head_dim(), ") must be even for rotary embeddings"));
  }
  if (c.use_decay && !c.use_retnet_slopes && c.n_heads > 1024) {
    return FieldError("n_heads", absl::StrCat("(", c.n_heads, ") is beyond the 1024 heads the decay rule supports"));
  }
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  auto config = ParseModelConfig(text.str());
  if (!config.ok()) {
    return absl::Status(config.status().code(), absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

}  // namespace supra

#include "engine/cpu/cpu_weights.h"

#include "absl/strings/str_cat.h"
#include "engine/model/tensor_names.h"
#include "engine/util/absl_compat.h"
#include "engine/util/status_macros.h"

namespace supra::cpu {
namespace {

absl::StatusOr<std::vector<float>> ToFloat32(const Checkpoint& checkpoint, const std::string& name) {
  const TensorView* view = checkpoint.Find(name);
  if (view == nullptr) return absl::InvalidArgumentError(absl::StrCat("checkpoint has no tensor ", name));
  const int64_t numel = view->numel();
  if (view->data == nullptr || view->nbytes != static_cast<size_t>(numel) * DTypeSize(view->dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", name, " holds ", view->nbytes, " bytes, not ", numel,
                                                   " elements of ", ToAbsl(DTypeName(view->dtype))));
  }
  std::vector<float> out(numel);
  if (!ConvertToFloat32(view->dtype, view->data, out.size(), out.data())) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " has dtype ", ToAbsl(DTypeName(view->dtype)), ", not a float type"));
  }
  return out;
}

}  // namespace

absl::StatusOr<CpuWeights> LoadCpuWeights(const ModelConfig& config, const Checkpoint& checkpoint) {
  RETURN_IF_ERROR(ValidateCheckpoint(config, checkpoint));
  CpuWeights w;
  if (config.weight_tying) {
    ASSIGN_OR_RETURN(w.embedding, ToFloat32(checkpoint, TiedEmbeddingName(checkpoint)));
  } else {
    ASSIGN_OR_RETURN(w.embedding, ToFloat32(checkpoint, "model.tok_embeddings.weight"));
    ASSIGN_OR_RETURN(w.output, ToFloat32(checkpoint, "model.output.weight"));
  }
  if (config.post_embed_norm) {
    ASSIGN_OR_RETURN(w.post_embed_norm, ToFloat32(checkpoint, "model.post_embed_norm.weight"));
  }
  ASSIGN_OR_RETURN(w.norm, ToFloat32(checkpoint, "model.norm.weight"));
  w.layers.resize(config.n_layers);
  for (int i = 0; i < config.n_layers; ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = absl::StrCat("model.layers.", i, ".");
    ASSIGN_OR_RETURN(l.attention_norm, ToFloat32(checkpoint, p + "attention_norm.weight"));
    ASSIGN_OR_RETURN(l.in_proj, ToFloat32(checkpoint, p + "attention.in_proj.weight"));
    ASSIGN_OR_RETURN(l.embed, ToFloat32(checkpoint, p + "attention._totrain_embed.weight"));
    ASSIGN_OR_RETURN(l.embed_bias, ToFloat32(checkpoint, p + "attention._totrain_embed.bias"));
    if (config.n_heads_kv != config.n_heads) {
      ASSIGN_OR_RETURN(l.embed_kv, ToFloat32(checkpoint, p + "attention._totrain_embed_kv.weight"));
      ASSIGN_OR_RETURN(l.embed_kv_bias, ToFloat32(checkpoint, p + "attention._totrain_embed_kv.bias"));
    }
    if (config.apply_qk_norm) {
      ASSIGN_OR_RETURN(l.q_norm, ToFloat32(checkpoint, p + "attention._totrain_q_norm.weight"));
      ASSIGN_OR_RETURN(l.k_norm, ToFloat32(checkpoint, p + "attention._totrain_k_norm.weight"));
    }
    ASSIGN_OR_RETURN(l.out_proj, ToFloat32(checkpoint, p + "attention.out_proj.weight"));
    ASSIGN_OR_RETURN(l.ffn_norm, ToFloat32(checkpoint, p + "ffn_norm.weight"));
    ASSIGN_OR_RETURN(l.w12, ToFloat32(checkpoint, p + "feed_forward.w12.weight"));
    ASSIGN_OR_RETURN(l.w3, ToFloat32(checkpoint, p + "feed_forward.w3.weight"));
  }
  return w;
}

}  // namespace supra::cpu

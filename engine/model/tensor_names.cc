#include "engine/model/tensor_names.h"

#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/util/absl_compat.h"

namespace supra {
namespace {

constexpr char kEmbedding[] = "model.tok_embeddings.weight";
constexpr char kOutput[] = "model.output.weight";

std::string ShapeString(const std::vector<int64_t>& shape) { return absl::StrCat("[", absl::StrJoin(shape, ", "), "]"); }

}  // namespace

std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& c) {
  const int64_t d = c.dim, h = c.n_heads, hkv = c.n_heads_kv, dh = c.head_dim();
  const int64_t f = c.qk_head_dim, dv = c.v_head_dim, ffn = c.intermediate_dim_ffn, v = c.vocab_size;
  std::vector<ExpectedTensor> out;
  out.push_back({kEmbedding, {v, d}});
  if (c.post_embed_norm) out.push_back({"model.post_embed_norm.weight", {d}});
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    out.push_back({p + "attention_norm.weight", {d}});
    out.push_back({p + "attention.in_proj.weight", {h * dh + hkv * dh + hkv * dv, d}});
    out.push_back({p + "attention._totrain_embed.weight", {h * f, h * dh}});
    out.push_back({p + "attention._totrain_embed.bias", {h * f}});
    if (hkv != h) {
      out.push_back({p + "attention._totrain_embed_kv.weight", {hkv * f, hkv * dh}});
      out.push_back({p + "attention._totrain_embed_kv.bias", {hkv * f}});
    }
    if (c.apply_qk_norm) {
      out.push_back({p + "attention._totrain_q_norm.weight", {h * f}});
      out.push_back({p + "attention._totrain_k_norm.weight", {h * f}});
    }
    out.push_back({p + "attention.out_proj.weight", {d, h * dv}});
    out.push_back({p + "ffn_norm.weight", {d}});
    out.push_back({p + "feed_forward.w12.weight", {2 * ffn, d}});
    out.push_back({p + "feed_forward.w3.weight", {d, ffn}});
  }
  out.push_back({"model.norm.weight", {d}});
  if (!c.weight_tying) out.push_back({kOutput, {v, d}});
  return out;
}

std::string TiedEmbeddingName(const Checkpoint& checkpoint) {
  return checkpoint.Find(kEmbedding) == nullptr && checkpoint.Find(kOutput) != nullptr ? kOutput : kEmbedding;
}

absl::Status ValidateCheckpoint(const ModelConfig& config, const Checkpoint& checkpoint) {
  std::vector<ExpectedTensor> expected = ExpectedTensors(config);
  std::vector<int64_t> tied_shape;
  if (config.weight_tying) {
    // The shared matrix may be stored as the embedding, the output head, or both.
    expected.front().name = TiedEmbeddingName(checkpoint);
    tied_shape = expected.front().shape;
  }
  std::vector<std::string> missing, wrong_shape, wrong_dtype, unexpected;
  std::set<std::string> known;
  for (const ExpectedTensor& e : expected) {
    known.insert(e.name);
    const TensorView* t = checkpoint.Find(e.name);
    if (t == nullptr) {
      missing.push_back(absl::StrCat(e.name, " ", ShapeString(e.shape)));
      continue;
    }
    if (t->shape != e.shape) {
      wrong_shape.push_back(absl::StrCat(e.name, " is ", ShapeString(t->shape), ", expected ", ShapeString(e.shape)));
    }
    if (!IsWeightDType(t->dtype)) wrong_dtype.push_back(absl::StrCat(e.name, " is ", ToAbsl(DTypeName(t->dtype))));
  }
  if (config.weight_tying && checkpoint.Find(kEmbedding) != nullptr) {
    if (const TensorView* out = checkpoint.Find(kOutput); out != nullptr) {
      known.insert(kOutput);
      if (out->shape != tied_shape) {
        wrong_shape.push_back(absl::StrCat(kOutput, " is ", ShapeString(out->shape), ", expected ",
                                           ShapeString(tied_shape), " (tied to the embedding)"));
      } else if (out->dtype != checkpoint.Find(kEmbedding)->dtype || out->nbytes != checkpoint.Find(kEmbedding)->nbytes ||
                 (out->data != checkpoint.Find(kEmbedding)->data &&
                  std::memcmp(out->data, checkpoint.Find(kEmbedding)->data, out->nbytes) != 0)) {
        wrong_shape.push_back(absl::StrCat(kOutput, " differs from ", kEmbedding,
                                           " although weight_tying is true"));
      }
    }
  }
  for (const auto& [name, view] : checkpoint.tensors()) {
    if (!known.contains(name)) unexpected.push_back(absl::StrCat(name, " ", ShapeString(view.shape)));
  }
  if (missing.empty() && wrong_shape.empty() && wrong_dtype.empty() && unexpected.empty()) return absl::OkStatus();
  std::string message = "checkpoint does not match config.json:";
  auto list = [&message](std::string_view title, const std::vector<std::string>& items) {
    if (items.empty()) return;
    absl::StrAppend(&message, "\n  ", ToAbsl(title), " (", items.size(), "):");
    for (const std::string& item : items) absl::StrAppend(&message, "\n    ", item);
  };
  list("missing tensors", missing);
  list("wrong shapes", wrong_shape);
  list("unsupported dtypes", wrong_dtype);
  list("unexpected tensors", unexpected);
  return absl::InvalidArgumentError(message);
}

}  // namespace supra

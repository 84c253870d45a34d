#include "engine/runtime/model.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/model/fingerprint.h"
#include "engine/model/generation_config.h"
#include "engine/model/tensor_names.h"
#include "engine/util/status_macros.h"

namespace supra {
namespace {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status Annotate(const absl::Status& s, const std::string& context) {
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const ModelOptions& options) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(options.dir)) {
    return absl::NotFoundError(absl::StrCat("model directory ", options.dir, " does not exist"));
  }
  std::unique_ptr<Model> model(new Model());
  model->dir_ = options.dir;
  const std::string config_path = (fs::path(options.dir) / "config.json").string();
  ASSIGN_OR_RETURN(const std::string config_text, ReadWholeFile(config_path));
  auto config = ParseModelConfig(config_text);
  if (!config.ok()) return Annotate(config.status(), config_path);
  model->config_ = *config;

  const std::string tokenizer_path = (fs::path(options.dir) / "tokenizer.model").string();
  ASSIGN_OR_RETURN(const std::string tokenizer_bytes, ReadWholeFile(tokenizer_path));
  ASSIGN_OR_RETURN(model->tokenizer_, Tokenizer::Load(tokenizer_path));
  if (model->tokenizer_->vocab_size() > model->config_.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(tokenizer_path, " has ", model->tokenizer_->vocab_size(),
                                                   " pieces, more than the model's vocab_size ",
                                                   model->config_.vocab_size));
  }

  ASSIGN_OR_RETURN(const GenerationConfig generation,
                   LoadGenerationConfig((fs::path(options.dir) / "generation_config.json").string()));
  model->bos_id_ = generation.bos_token_id.value_or(model->tokenizer_->bos_id());
  model->eos_id_ = generation.eos_token_id.value_or(model->tokenizer_->eos_id());
  for (auto [name, id] : {std::pair{"bos", model->bos_id_}, {"eos", model->eos_id_}}) {
    if (id < 0 || id >= model->config_.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(options.dir, ": ", name, " token id ", id, " is outside the vocabulary"));
    }
  }

  ASSIGN_OR_RETURN(Checkpoint checkpoint, OpenCheckpoint(options.dir));
  if (auto s = ValidateCheckpoint(model->config_, checkpoint); !s.ok()) return Annotate(s, options.dir);
  model->weights_format_ = checkpoint.format();
  model->fingerprint_ = ModelFingerprint(config_text, tokenizer_bytes, checkpoint);

  if (options.backend == "cpu") {
    ASSIGN_OR_RETURN(model->backend_, CreateCpuBackend(model->config_, checkpoint, options.cpu));
  } else if (options.backend == "cuda") {
    ASSIGN_OR_RETURN(model->backend_, CreateCudaBackend(model->config_, checkpoint, options.cuda));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown backend '", options.backend, "' (known: cpu, cuda)"));
  }
  return model;
}

}  // namespace supra

#include "engine/tokenizer/tokenizer.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/sentencepiece_model.h"
#include "engine/util/status_macros.h"

namespace supra {

using tokenizer_internal::SentencePieceModel;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<SentencePieceModel> model, SentencePieceModel::Load(path));
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(model)));
}

Tokenizer::Tokenizer(std::unique_ptr<tokenizer_internal::SentencePieceModel> model)
    : model_(std::move(model)),
      vocab_size_(model_->vocab_size()),
      bos_id_(model_->bos_id()),
      eos_id_(model_->eos_id()),
      unk_id_(model_->unk_id()),
      byte_value_(vocab_size_, -1),
      is_control_(vocab_size_) {
  for (int32_t id = 0; id < vocab_size_; ++id) {
    is_control_[id] = model_->IsControl(id);
    byte_value_[id] = static_cast<int16_t>(model_->ByteValue(id));
  }
}

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const { return model_->Encode(text); }

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids) const {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!InVocab(ids[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", ids[i], " at position ", i, " is outside the vocabulary [0, ", vocab_size_, ")"));
    }
  }
  return model_->Decode(ids);
}

absl::StatusOr<std::string_view> Tokenizer::IdToPiece(int32_t id) const {
  if (!InVocab(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", id, " is outside the vocabulary [0, ", vocab_size_, ")"));
  }
  return std::string_view(model_->IdToPiece(id));
}

}  // namespace supra

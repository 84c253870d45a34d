#include "engine/tokenizer/tokenizer.h"

#include <span>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/sentencepiece_model.h"

namespace supra {
namespace {

using tokenizer_internal::SentencePieceModel;
using tokenizer_internal::SpLoadError;

// "<0xE2>" -> 0xE2; -1 for anything else.
int ParseBytePiece(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  int value = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = piece[i];
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return -1;
    }
    value = value * 16 + digit;
  }
  return value;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path) {
  SpLoadError error = SpLoadError::kNone;
  std::string message;
  std::unique_ptr<SentencePieceModel> model = SentencePieceModel::Load(path, &error, &message);
  if (model == nullptr) {
    if (error == SpLoadError::kNotFound) return absl::NotFoundError(message);
    return absl::DataLossError(message);
  }
  const int vocab_size = model->vocab_size();
  std::vector<int16_t> byte_value(vocab_size, -1);
  for (int id = 0; id < vocab_size; ++id) {
    if (!model->IsByte(id)) continue;
    const int value = ParseBytePiece(model->IdToPiece(id));
    if (value < 0) {
      return absl::DataLossError(
          absl::StrCat("'", path, "': byte piece ", id, " is '", model->IdToPiece(id), "', not <0xHH>"));
    }
    byte_value[id] = static_cast<int16_t>(value);
  }
  auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer(std::move(model)));
  tokenizer->byte_value_ = std::move(byte_value);
  return tokenizer;
}

Tokenizer::Tokenizer(std::unique_ptr<tokenizer_internal::SentencePieceModel> model)
    : model_(std::move(model)),
      vocab_size_(model_->vocab_size()),
      bos_id_(model_->bos_id()),
      eos_id_(model_->eos_id()),
      unk_id_(model_->unk_id()),
      is_control_(vocab_size_) {
  for (int32_t id = 0; id < vocab_size_; ++id) is_control_[id] = model_->IsControl(id);
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
  std::string text;
  std::string message;
  if (!model_->Decode(std::span<const int32_t>(ids.data(), ids.size()), &text, &message)) {
    return absl::InternalError(absl::StrCat("SentencePiece decode failed: ", message));
  }
  return text;
}

absl::StatusOr<std::string_view> Tokenizer::IdToPiece(int32_t id) const {
  if (!InVocab(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", id, " is outside the vocabulary [0, ", vocab_size_, ")"));
  }
  return std::string_view(model_->IdToPiece(id));
}

}  // namespace supra

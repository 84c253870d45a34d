// The only translation unit that includes sentencepiece_processor.h; it must
// not include any Abseil header, directly or through project headers.
#include "engine/tokenizer/sentencepiece_model.h"

#include <sentencepiece_processor.h>

#include <filesystem>
#include <system_error>
#include <utility>

namespace supra::tokenizer_internal {

std::unique_ptr<SentencePieceModel> SentencePieceModel::Load(const std::string& path, SpLoadError* error,
                                                             std::string* message) {
  // SentencePiece reports a missing file and an unparsable one with codes that
  // depend on its version; tell them apart here.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    *error = SpLoadError::kNotFound;
    *message = "no tokenizer model file at '" + path + "'";
    return nullptr;
  }
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const sentencepiece::util::Status status = processor->Load(path);
  if (!status.ok()) {
    *error = SpLoadError::kCorrupt;
    *message = "'" + path + "' is not a valid SentencePiece model: " + status.ToString();
    return nullptr;
  }
  if (processor->GetPieceSize() <= 0) {
    *error = SpLoadError::kCorrupt;
    *message = "'" + path + "' is a SentencePiece model with an empty vocabulary";
    return nullptr;
  }
  *error = SpLoadError::kNone;
  return std::unique_ptr<SentencePieceModel>(new SentencePieceModel(std::move(processor)));
}

SentencePieceModel::SentencePieceModel(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor)
    : processor_(std::move(processor)) {}

SentencePieceModel::~SentencePieceModel() = default;

int SentencePieceModel::vocab_size() const { return processor_->GetPieceSize(); }
int SentencePieceModel::bos_id() const { return processor_->bos_id(); }
int SentencePieceModel::eos_id() const { return processor_->eos_id(); }
int SentencePieceModel::unk_id() const { return processor_->unk_id(); }

std::vector<int32_t> SentencePieceModel::Encode(std::string_view text) const {
  std::vector<int> ids;
  // Encode fails only on an unloaded model, which Load rules out.
  processor_->Encode(text, &ids).IgnoreError();
  return std::vector<int32_t>(ids.begin(), ids.end());
}

bool SentencePieceModel::Decode(std::span<const int32_t> ids, std::string* text, std::string* message) const {
  const std::vector<int> int_ids(ids.begin(), ids.end());
  text->clear();
  const sentencepiece::util::Status status = processor_->Decode(int_ids, text);
  if (!status.ok()) {
    *message = status.ToString();
    return false;
  }
  return true;
}

const std::string& SentencePieceModel::IdToPiece(int id) const { return processor_->IdToPiece(id); }
bool SentencePieceModel::IsByte(int id) const { return processor_->IsByte(id); }
bool SentencePieceModel::IsControl(int id) const { return processor_->IsControl(id); }
bool SentencePieceModel::IsUnknown(int id) const { return processor_->IsUnknown(id); }

}  // namespace supra::tokenizer_internal

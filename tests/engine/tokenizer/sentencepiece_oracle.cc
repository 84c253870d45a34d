// The only translation unit that includes sentencepiece_processor.h; it must
// not include any Abseil header, directly or through project headers.
#include "tests/engine/tokenizer/sentencepiece_oracle.h"

#include <sentencepiece_processor.h>

#include <utility>

namespace supra::testing {

std::unique_ptr<SentencePieceOracle> SentencePieceOracle::FromSerialized(const std::string& bytes, std::string* error) {
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const sentencepiece::util::Status status = processor->LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    *error = status.ToString();
    return nullptr;
  }
  return std::unique_ptr<SentencePieceOracle>(new SentencePieceOracle(std::move(processor)));
}

SentencePieceOracle::SentencePieceOracle(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor)
    : processor_(std::move(processor)) {}

SentencePieceOracle::~SentencePieceOracle() = default;

int SentencePieceOracle::vocab_size() const { return processor_->GetPieceSize(); }
int SentencePieceOracle::bos_id() const { return processor_->bos_id(); }
int SentencePieceOracle::eos_id() const { return processor_->eos_id(); }
int SentencePieceOracle::unk_id() const { return processor_->unk_id(); }
std::string SentencePieceOracle::IdToPiece(int id) const { return processor_->IdToPiece(id); }
bool SentencePieceOracle::IsByte(int id) const { return processor_->IsByte(id); }
bool SentencePieceOracle::IsControl(int id) const { return processor_->IsControl(id); }

std::vector<int32_t> SentencePieceOracle::Encode(std::string_view text, bool* ok) const {
  std::vector<int> ids;
  *ok = processor_->Encode(text, &ids).ok();
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string SentencePieceOracle::Decode(const std::vector<int32_t>& ids, bool* ok) const {
  std::string text;
  *ok = processor_->Decode(std::vector<int>(ids.begin(), ids.end()), &text).ok();
  return text;
}

}  // namespace supra::testing

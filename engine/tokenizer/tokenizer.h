// The model's SentencePiece tokenizer (`tokenizer.model`, supra-model.md §2),
// read, encoded and decoded by our own code (sentencepiece_model.h) with the
// same results as libsentencepiece, for BPE models with identity
// normalization, with or without byte fallback.
//
// Encode never adds BOS or EOS: BOS is prepended once, to a text prompt at
// position 0 (supra-model.md §5), by the caller that knows the position.
// A Tokenizer is immutable after Load and safe to share between threads.
#ifndef SUPRA_ENGINE_TOKENIZER_TOKENIZER_H_
#define SUPRA_ENGINE_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace supra {

namespace tokenizer_internal {
class SentencePieceModel;
}  // namespace tokenizer_internal

class Tokenizer {
 public:
  // NOT_FOUND when `path` does not exist; DATA_LOSS when it is not a valid
  // SentencePiece model; UNIMPLEMENTED, naming what, for a valid model of a
  // kind not supported (Unigram/Word/Char, a normalization charsmap such as
  // nmt_nfkc, a denormalizer).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& path);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  int32_t vocab_size() const { return vocab_size_; }
  // -1 when the model defines no such token.
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t unk_id() const { return unk_id_; }

  // Text to token ids, without BOS/EOS.
  std::vector<int32_t> Encode(std::string_view text) const;

  // Token ids to text as SentencePiece decodes them: control tokens (BOS, EOS)
  // vanish, the leading space of the first piece is dropped, runs of
  // byte-fallback pieces become UTF-8 (each invalid byte U+FFFD).
  // INVALID_ARGUMENT naming the first id outside [0, vocab_size).
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const;

  // The piece's vocabulary string ("▁the", "<0xE2>", "</s>").
  // INVALID_ARGUMENT for an id outside [0, vocab_size).
  absl::StatusOr<std::string_view> IdToPiece(int32_t id) const;

  // False for ids outside [0, vocab_size).
  bool IsByte(int32_t id) const { return InVocab(id) && byte_value_[id] >= 0; }
  bool IsControl(int32_t id) const { return InVocab(id) && is_control_[id]; }
  // The byte a byte-fallback piece stands for ("<0xE2>" -> 0xE2); nullopt for
  // other pieces and ids outside the vocabulary.
  std::optional<uint8_t> ByteValue(int32_t id) const {
    if (!IsByte(id)) return std::nullopt;
    return static_cast<uint8_t>(byte_value_[id]);
  }

 private:
  explicit Tokenizer(std::unique_ptr<tokenizer_internal::SentencePieceModel> model);
  bool InVocab(int32_t id) const { return id >= 0 && id < vocab_size_; }

  std::unique_ptr<tokenizer_internal::SentencePieceModel> model_;
  int32_t vocab_size_ = 0;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  int32_t unk_id_ = -1;
  // Per-id tables for the hot queries.
  std::vector<int16_t> byte_value_;  // [vocab], 0..255 for byte pieces, else -1
  std::vector<bool> is_control_;     // [vocab]
};

}  // namespace supra

#endif  // SUPRA_ENGINE_TOKENIZER_TOKENIZER_H_

// A thin, Abseil-free wrapper around sentencepiece::SentencePieceProcessor.
//
// Debian's sentencepiece_processor.h declares its own absl::string_view shim,
// which clashes with the real Abseil in any translation unit that sees both.
// So the SentencePiece header is included only by sentencepiece_model.cc, and
// this header (included by tokenizer.cc, which does use Abseil) exposes plain
// C++ types only. Nothing here or in the .cc may include an Abseil header.
#ifndef SUPRA_ENGINE_TOKENIZER_SENTENCEPIECE_MODEL_H_
#define SUPRA_ENGINE_TOKENIZER_SENTENCEPIECE_MODEL_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace supra::tokenizer_internal {

enum class SpLoadError {
  kNone,
  kNotFound,  // the file does not exist or cannot be opened
  kCorrupt,   // the file is not a usable SentencePiece model
};

// Immutable after Load; const methods are safe to call from several threads
// (SentencePiece's const Encode/Decode keep no shared mutable state).
class SentencePieceModel {
 public:
  // Returns null on failure and sets *error and *message.
  static std::unique_ptr<SentencePieceModel> Load(const std::string& path, SpLoadError* error, std::string* message);

  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  int vocab_size() const;
  int bos_id() const;  // -1 when the model has none
  int eos_id() const;
  int unk_id() const;

  // Text to ids, without BOS/EOS.
  std::vector<int32_t> Encode(std::string_view text) const;
  // ids -> text; every id must be in [0, vocab_size). Returns false and sets
  // *message on failure.
  bool Decode(std::span<const int32_t> ids, std::string* text, std::string* message) const;

  // Per-id queries; `id` must be in [0, vocab_size).
  const std::string& IdToPiece(int id) const;
  bool IsByte(int id) const;
  bool IsControl(int id) const;
  bool IsUnknown(int id) const;

 private:
  explicit SentencePieceModel(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor);

  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace supra::tokenizer_internal

#endif  // SUPRA_ENGINE_TOKENIZER_SENTENCEPIECE_MODEL_H_

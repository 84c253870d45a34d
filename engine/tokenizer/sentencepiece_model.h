// Our own reader, encoder and decoder for SentencePiece BPE models, giving the
// same ids and text as libsentencepiece 0.1.97 (Debian 12) for the models it
// supports: model_type BPE, identity normalization (no precompiled charsmap),
// with or without byte fallback. The engine cannot link libsentencepiece: it
// bundles and exports its own protobuf runtime, which crashes any program that
// also loads libprotobuf.
//
// The algorithms follow sentencepiece's normalizer.cc (Normalize),
// bpe_model.cc (SampleEncode without dropout), model_interface.cc
// (InitializePieces, PieceToId) and sentencepiece_processor.cc
// (PopulateSentencePieceText, Decode).
#ifndef SUPRA_ENGINE_TOKENIZER_SENTENCEPIECE_MODEL_H_
#define SUPRA_ENGINE_TOKENIZER_SENTENCEPIECE_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer/model_proto.h"

namespace supra::tokenizer_internal {

// Immutable after Load; const methods keep no shared mutable state and are
// safe to call from several threads.
class SentencePieceModel {
 public:
  // NOT_FOUND when the file cannot be read; DATA_LOSS when it is not a valid
  // SentencePiece model (as libsentencepiece would refuse it); UNIMPLEMENTED
  // for a valid model this reader does not support (Unigram/Word/Char, a
  // normalization or denormalization charsmap).
  static absl::StatusOr<std::unique_ptr<SentencePieceModel>> Load(const std::string& path);
  // The same from the file's bytes; `name` names the model in errors.
  static absl::StatusOr<std::unique_ptr<SentencePieceModel>> FromSerialized(std::string_view bytes,
                                                                            const std::string& name);

  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  int vocab_size() const { return static_cast<int>(proto_.pieces.size()); }
  int bos_id() const { return bos_id_; }  // -1 when the model has none
  int eos_id() const { return eos_id_; }
  int unk_id() const { return unk_id_; }  // -1 when unk_piece is not the unknown piece

  // Text to ids, without BOS/EOS (SentencePieceProcessor::Encode).
  std::vector<int32_t> Encode(std::string_view text) const;
  // ids -> text (SentencePieceProcessor::Decode); every id must be in
  // [0, vocab_size).
  std::string Decode(absl::Span<const int32_t> ids) const;

  // Per-id queries; `id` must be in [0, vocab_size).
  const std::string& IdToPiece(int id) const { return proto_.pieces[id].piece; }
  bool IsByte(int id) const { return Type(id) == PieceType::kByte; }
  bool IsControl(int id) const { return Type(id) == PieceType::kControl; }
  bool IsUnknown(int id) const { return Type(id) == PieceType::kUnknown; }
  bool IsUnused(int id) const { return Type(id) == PieceType::kUnused; }
  // 0..255 for a byte piece ("<0xE2>" -> 0xE2), -1 for any other.
  int ByteValue(int id) const;

 private:
  explicit SentencePieceModel(ModelProto proto) : proto_(std::move(proto)) {}
  // model_interface.cc InitializePieces; the error message without the path.
  absl::Status InitializePieces();
  PieceType Type(int id) const { return proto_.pieces[id].type; }

  // Reserved (control, unknown, byte) pieces first, then the others; the
  // unknown id for a string in neither.
  int PieceToId(std::string_view piece) const;
  // Length of the user-defined symbol that `text` starts with, longest first;
  // 0 when none.
  size_t MatchUserDefined(std::string_view text) const;
  // normalizer.cc Normalize for a model without a charsmap.
  std::string Normalize(std::string_view input) const;
  // bpe_model.cc Encode: the normalized text as (piece, id) symbols.
  std::vector<std::pair<std::string_view, int>> EncodeNormalized(std::string_view normalized) const;

  ModelProto proto_;
  // Keys view proto_.pieces' strings, which never move after Load.
  std::unordered_map<std::string_view, int> pieces_;           // normal, user-defined, unused
  std::unordered_map<std::string_view, int> reserved_id_map_;  // control, unknown, byte
  std::unordered_set<std::string_view> user_defined_;
  size_t max_user_defined_length_ = 0;
  std::vector<int> decode_id_;  // [vocab] PieceToId(IdToPiece(id)), what Decode acts on
  int byte_id_[256] = {};       // byte -> id of its <0xHH> piece, with byte fallback
  int model_unk_id_ = -1;       // the UNKNOWN piece, PieceToId's fallback
  int unk_id_ = -1;             // as SentencePieceProcessor::unk_id() and friends
  int bos_id_ = -1;
  int eos_id_ = -1;
};

}  // namespace supra::tokenizer_internal

#endif  // SUPRA_ENGINE_TOKENIZER_SENTENCEPIECE_MODEL_H_

// libsentencepiece as the oracle of the tokenizer parity test: a thin wrapper
// with plain C++ types. sentencepiece_processor.h declares its own
// absl::string_view, which clashes with Abseil's, so only
// sentencepiece_oracle.cc includes it, and it and this header include no
// Abseil header. The engine itself never links libsentencepiece (its bundled
// protobuf runtime crashes programs that also load libprotobuf).
#ifndef SUPRA_TESTS_ENGINE_TOKENIZER_SENTENCEPIECE_ORACLE_H_
#define SUPRA_TESTS_ENGINE_TOKENIZER_SENTENCEPIECE_ORACLE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace supra::testing {

class SentencePieceOracle {
 public:
  // From a serialized ModelProto; null with *error set when SentencePiece
  // refuses it.
  static std::unique_ptr<SentencePieceOracle> FromSerialized(const std::string& bytes, std::string* error);

  ~SentencePieceOracle();
  SentencePieceOracle(const SentencePieceOracle&) = delete;
  SentencePieceOracle& operator=(const SentencePieceOracle&) = delete;

  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;
  int unk_id() const;
  std::string IdToPiece(int id) const;
  bool IsByte(int id) const;
  bool IsControl(int id) const;

  // EncodeAsIds; sets *ok to whether SentencePiece reported success.
  std::vector<int32_t> Encode(std::string_view text, bool* ok) const;
  // DecodeIds; sets *ok likewise.
  std::string Decode(const std::vector<int32_t>& ids, bool* ok) const;

 private:
  explicit SentencePieceOracle(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor);
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace supra::testing

#endif  // SUPRA_TESTS_ENGINE_TOKENIZER_SENTENCEPIECE_ORACLE_H_

// The parts of a serialized sentencepiece.ModelProto (sentencepiece_model.proto,
// proto2) that encoding and decoding need, read without libprotobuf.
//
// Debian 12's libsentencepiece bundles its own protobuf runtime and exports
// it, which crashes any program that also loads libprotobuf (every gRPC
// program), so the engine reads the model file itself.
#ifndef SUPRA_ENGINE_TOKENIZER_MODEL_PROTO_H_
#define SUPRA_ENGINE_TOKENIZER_MODEL_PROTO_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace supra::tokenizer_internal {

// ModelProto.SentencePiece.Type.
enum class PieceType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// TrainerSpec.ModelType.
enum class ModelType : int32_t {
  kUnigram = 1,
  kBpe = 2,
  kWord = 3,
  kChar = 4,
};

// Each field holds the proto2 default when the file does not set it.
struct ModelProto {
  struct Piece {
    std::string piece;                    // field 1
    float score = 0.0f;                   // field 2
    PieceType type = PieceType::kNormal;  // field 3
  };
  struct TrainerSpec {                           // ModelProto field 2
    ModelType model_type = ModelType::kUnigram;  // field 3
    bool treat_whitespace_as_suffix = false;     // field 24
    bool byte_fallback = false;                  // field 35
    std::string unk_piece = "<unk>";             // field 45
    std::string bos_piece = "<s>";               // field 46
    std::string eos_piece = "</s>";              // field 47
    std::string unk_surface = " \xE2\x81\x87 ";  // field 44, " ⁇ "
  };
  struct NormalizerSpec {                  // ModelProto fields 3 and 5
    std::string name;                      // field 1
    std::string precompiled_charsmap;      // field 2
    bool add_dummy_prefix = true;          // field 3
    bool remove_extra_whitespaces = true;  // field 4
    bool escape_whitespaces = true;        // field 5
  };

  std::vector<Piece> pieces;  // field 1, in id order
  TrainerSpec trainer_spec;
  NormalizerSpec normalizer_spec;
  NormalizerSpec denormalizer_spec;
};

// Parses a serialized ModelProto. Fields not listed above are skipped; a later
// occurrence of a scalar overrides an earlier one and repeated occurrences of
// a message merge, as in protobuf; an enum value the schema does not know
// leaves the field unchanged (proto2 keeps it as an unknown field).
// DATA_LOSS, with the byte offset, for bytes that are not well-formed
// protobuf wire format.
absl::StatusOr<ModelProto> ParseModelProto(std::string_view bytes);

}  // namespace supra::tokenizer_internal

#endif  // SUPRA_ENGINE_TOKENIZER_MODEL_PROTO_H_

// Loading and decoding; encoding is in sentencepiece_encode.cc.
#include "engine/tokenizer/sentencepiece_model.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/tokenizer/utf8.h"
#include "engine/util/status_macros.h"

namespace supra::tokenizer_internal {
namespace {

std::string ByteToPiece(uint8_t b) { return absl::StrFormat("<0x%02X>", b); }

// "<0xE2>" -> 0xE2 in exactly the form ByteToPiece writes; -1 otherwise.
int PieceToByte(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int value = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = piece[i];
    if (c >= '0' && c <= '9') {
      value = value * 16 + (c - '0');
    } else if (c >= 'A' && c <= 'F') {
      value = value * 16 + (c - 'A' + 10);
    } else {
      return -1;
    }
  }
  return value;
}

const char* ModelTypeName(ModelType type) {
  switch (type) {
    case ModelType::kUnigram:
      return "Unigram";
    case ModelType::kBpe:
      return "BPE";
    case ModelType::kWord:
      return "Word";
    case ModelType::kChar:
      return "Char";
  }
  return "unknown";
}

}  // namespace

absl::StatusOr<std::unique_ptr<SentencePieceModel>> SentencePieceModel::Load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("no tokenizer model file at '", path, "'"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open tokenizer model file '", path, "'"));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading tokenizer model file '", path, "'"));
  return FromSerialized(bytes, path);
}

absl::StatusOr<std::unique_ptr<SentencePieceModel>> SentencePieceModel::FromSerialized(std::string_view bytes,
                                                                                       const std::string& name) {
  absl::StatusOr<ModelProto> proto = ParseModelProto(bytes);
  if (!proto.ok()) {
    return absl::DataLossError(
        absl::StrCat("'", name, "' is not a valid SentencePiece model: ", proto.status().message()));
  }
  auto model = std::unique_ptr<SentencePieceModel>(new SentencePieceModel(*std::move(proto)));
  if (absl::Status status = model->InitializePieces(); !status.ok()) {
    return absl::DataLossError(absl::StrCat("'", name, "' is not a valid SentencePiece model: ", status.message()));
  }
  // Supported: what the models we serve use. Everything else is refused
  // rather than encoded differently from SentencePiece.
  const ModelProto& p = model->proto_;
  if (p.trainer_spec.model_type != ModelType::kBpe) {
    return absl::UnimplementedError(absl::StrCat("'", name, "' is a SentencePiece ",
                                                 ModelTypeName(p.trainer_spec.model_type),
                                                 " model; only BPE models are supported"));
  }
  if (!p.normalizer_spec.precompiled_charsmap.empty()) {
    return absl::UnimplementedError(absl::StrCat("'", name, "' uses the SentencePiece normalization '",
                                                 p.normalizer_spec.name,
                                                 "' (a precompiled charsmap); only identity normalization is "
                                                 "supported"));
  }
  if (!p.denormalizer_spec.precompiled_charsmap.empty()) {
    return absl::UnimplementedError(absl::StrCat("'", name, "' has a SentencePiece denormalizer '",
                                                 p.denormalizer_spec.name, "'; denormalization is not supported"));
  }
  return model;
}

absl::Status SentencePieceModel::InitializePieces() {
  for (int id = 0; id < vocab_size(); ++id) {
    const ModelProto::Piece& sp = proto_.pieces[id];
    if (sp.piece.empty()) return absl::DataLossError(absl::StrCat("piece ", id, " is empty"));
    const bool is_normal_piece =
        sp.type == PieceType::kNormal || sp.type == PieceType::kUserDefined || sp.type == PieceType::kUnused;
    if (!(is_normal_piece ? pieces_ : reserved_id_map_).emplace(sp.piece, id).second) {
      return absl::DataLossError(absl::StrCat("piece ", id, " '", sp.piece, "' is already defined"));
    }
    if (sp.type == PieceType::kUserDefined) {
      user_defined_.insert(sp.piece);
      max_user_defined_length_ = std::max(max_user_defined_length_, sp.piece.size());
    }
    if (sp.type == PieceType::kUnknown) {
      if (model_unk_id_ >= 0) return absl::DataLossError(absl::StrCat("piece ", id, ": unk is already defined"));
      model_unk_id_ = id;
    }
    if (sp.type == PieceType::kByte) {
      if (!proto_.trainer_spec.byte_fallback) {
        return absl::DataLossError(
            absl::StrCat("byte piece ", sp.piece, " is found although `byte_fallback` is false"));
      }
      if (PieceToByte(sp.piece) < 0) return absl::DataLossError(absl::StrCat("byte piece ", sp.piece, " is invalid"));
    }
  }
  if (model_unk_id_ < 0) return absl::DataLossError("unk is not defined (is the vocabulary empty?)");
  if (proto_.trainer_spec.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      const auto it = reserved_id_map_.find(ByteToPiece(static_cast<uint8_t>(b)));
      if (it == reserved_id_map_.end() || !IsByte(it->second)) {
        return absl::DataLossError("there are not 256 byte pieces although `byte_fallback` is true");
      }
      byte_id_[b] = it->second;
    }
  }
  decode_id_.resize(vocab_size());
  for (int id = 0; id < vocab_size(); ++id) decode_id_[id] = PieceToId(IdToPiece(id));

  // SentencePieceProcessor::unk_id(), bos_id(), eos_id(): the id of the named
  // piece when it has the right type.
  const auto piece_or_default = [](const std::string& piece, std::string_view fallback) {
    return piece.empty() ? std::string(fallback) : piece;
  };
  const int unk = PieceToId(piece_or_default(proto_.trainer_spec.unk_piece, "<unk>"));
  unk_id_ = IsUnknown(unk) ? unk : -1;
  const int bos = PieceToId(piece_or_default(proto_.trainer_spec.bos_piece, "<s>"));
  bos_id_ = IsControl(bos) ? bos : -1;
  const int eos = PieceToId(piece_or_default(proto_.trainer_spec.eos_piece, "</s>"));
  eos_id_ = IsControl(eos) ? eos : -1;
  return absl::OkStatus();
}

int SentencePieceModel::PieceToId(std::string_view piece) const {
  if (const auto it = reserved_id_map_.find(piece); it != reserved_id_map_.end()) return it->second;
  if (const auto it = pieces_.find(piece); it != pieces_.end()) return it->second;
  return model_unk_id_;
}

int SentencePieceModel::ByteValue(int id) const { return IsByte(id) ? PieceToByte(IdToPiece(id)) : -1; }

std::string SentencePieceModel::Decode(absl::Span<const int32_t> ids) const {
  const ModelProto::NormalizerSpec& spec = proto_.normalizer_spec;
  const bool strip_bos_ws = spec.add_dummy_prefix || spec.remove_extra_whitespaces;
  std::string text;
  std::string bytes;  // the current run of byte pieces

  // Each maximal well-formed character of the run as is, each other byte as
  // U+FFFD.
  const auto flush_bytes = [&text, &bytes] {
    std::string_view rest = bytes;
    while (!rest.empty()) {
      const size_t length = ValidCharLength(rest);
      if (length == 0) {
        text.append(kReplacementCharacter);
        rest.remove_prefix(1);
      } else {
        text.append(rest.substr(0, length));
        rest.remove_prefix(length);
      }
    }
    bytes.clear();
  };

  // Whether the next piece may still lose its leading "▁" (the dummy prefix):
  // until text appears or a piece has given up its "▁".
  bool is_bos_ws = true;
  bool bos_ws_seen = false;
  for (const int32_t original_id : ids) {
    const int id = decode_id_[original_id];
    if (IsByte(id)) {
      bytes.push_back(static_cast<char>(PieceToByte(IdToPiece(id))));
      continue;
    }
    flush_bytes();
    if (bos_ws_seen || !text.empty()) is_bos_ws = false;
    bos_ws_seen = false;
    if (IsControl(id)) continue;
    if (IsUnknown(id)) {
      // SentencePiece holds the surface as a C string.
      text.append(proto_.trainer_spec.unk_surface.c_str());
      continue;
    }
    std::string_view piece = IdToPiece(id);
    if (is_bos_ws && strip_bos_ws && piece.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
      piece.remove_prefix(kSpaceSymbol.size());
      // With remove_extra_whitespaces every leading "▁" goes, not just one.
      bos_ws_seen = !spec.remove_extra_whitespaces;
    }
    for (size_t pos = 0; pos < piece.size();) {
      if (piece.substr(pos, kSpaceSymbol.size()) == kSpaceSymbol) {
        text.push_back(' ');
        pos += kSpaceSymbol.size();
      } else {
        text.push_back(piece[pos++]);
      }
    }
  }
  flush_bytes();
  return text;
}

}  // namespace supra::tokenizer_internal

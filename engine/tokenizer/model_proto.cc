#include "engine/tokenizer/model_proto.h"

#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/util/status_macros.h"

namespace supra::tokenizer_internal {
namespace {

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

// Protobuf's own limit on nested groups and messages.
constexpr int kMaxDepth = 100;

// A bounds-checked cursor over one message's bytes. `base` is the message's
// offset in the file, so errors name absolute offsets.
class WireReader {
 public:
  WireReader(std::string_view bytes, size_t base) : bytes_(bytes), base_(base) {}

  bool done() const { return pos_ == bytes_.size(); }

  absl::StatusOr<uint64_t> ReadVarint() {
    uint64_t value = 0;
    for (int i = 0; i < 10; ++i) {
      if (pos_ == bytes_.size()) return Error("varint runs past the end of the data");
      const uint8_t b = static_cast<uint8_t>(bytes_[pos_++]);
      value |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) return value;
    }
    return Error("varint longer than 10 bytes");
  }

  // Field number and wire type.
  absl::StatusOr<std::pair<uint32_t, uint32_t>> ReadTag() {
    ASSIGN_OR_RETURN(const uint64_t tag, ReadVarint());
    const uint64_t field = tag >> 3;
    if (field == 0 || field > 0x1FFFFFFF) return Error(absl::StrCat("invalid field number ", field));
    return std::make_pair(static_cast<uint32_t>(field), static_cast<uint32_t>(tag & 7));
  }

  absl::StatusOr<std::string_view> ReadLengthDelimited(size_t* offset) {
    ASSIGN_OR_RETURN(const uint64_t length, ReadVarint());
    if (length > bytes_.size() - pos_) {
      return Error(
          absl::StrCat("length ", length, " runs past the end of the data (", bytes_.size() - pos_, " bytes left)"));
    }
    *offset = base_ + pos_;
    const std::string_view value = bytes_.substr(pos_, length);
    pos_ += length;
    return value;
  }

  absl::StatusOr<uint32_t> ReadFixed32() {
    if (bytes_.size() - pos_ < 4) return Error("fixed32 runs past the end of the data");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(static_cast<uint8_t>(bytes_[pos_ + i])) << (8 * i);
    pos_ += 4;
    return value;
  }

  // Skips the value of a field this reader does not interpret.
  absl::Status Skip(uint32_t field, uint32_t wire_type, int depth) {
    switch (wire_type) {
      case kVarint:
        return ReadVarint().status();
      case kFixed64:
        if (bytes_.size() - pos_ < 8) return Error("fixed64 runs past the end of the data");
        pos_ += 8;
        return absl::OkStatus();
      case kLengthDelimited: {
        size_t offset = 0;
        return ReadLengthDelimited(&offset).status();
      }
      case kStartGroup: {
        if (depth >= kMaxDepth) return Error("groups nested too deeply");
        while (true) {
          if (done()) return Error(absl::StrCat("group ", field, " has no end"));
          ASSIGN_OR_RETURN(const auto tag, ReadTag());
          if (tag.second == kEndGroup) {
            if (tag.first != field) return Error(absl::StrCat("group ", field, " ended as ", tag.first));
            return absl::OkStatus();
          }
          RETURN_IF_ERROR(Skip(tag.first, tag.second, depth + 1));
        }
      }
      case kFixed32:
        return ReadFixed32().status();
      case kEndGroup:
        return Error(absl::StrCat("end of group ", field, " without a start"));
      default:
        return Error(absl::StrCat("invalid wire type ", wire_type, " for field ", field));
    }
  }

  absl::Status Error(const std::string& what) const {
    return absl::DataLossError(absl::StrCat("malformed protobuf at byte ", base_ + pos_, ": ", what));
  }

 private:
  std::string_view bytes_;
  size_t base_;
  size_t pos_ = 0;
};

// Calls `on_field(reader, field, wire_type)` for each field of the message in
// `bytes`; `on_field` returns false for a field it did not consume, which is
// then skipped.
template <typename OnField>
absl::Status ForEachField(std::string_view bytes, size_t base, int depth, OnField on_field) {
  if (depth >= kMaxDepth) return absl::DataLossError("malformed protobuf: messages nested too deeply");
  WireReader reader(bytes, base);
  while (!reader.done()) {
    ASSIGN_OR_RETURN(const auto tag, reader.ReadTag());
    ASSIGN_OR_RETURN(const bool consumed, on_field(reader, tag.first, tag.second));
    if (!consumed) RETURN_IF_ERROR(reader.Skip(tag.first, tag.second, depth));
  }
  return absl::OkStatus();
}

// Typed readers: each returns false (not consumed) when the wire type is not
// the one the schema gives the field; protobuf keeps such a field as unknown.
absl::StatusOr<bool> ReadBool(WireReader& r, uint32_t wire_type, bool* out) {
  if (wire_type != kVarint) return false;
  ASSIGN_OR_RETURN(const uint64_t v, r.ReadVarint());
  *out = v != 0;
  return true;
}

absl::StatusOr<bool> ReadString(WireReader& r, uint32_t wire_type, std::string* out) {
  if (wire_type != kLengthDelimited) return false;
  size_t offset = 0;
  ASSIGN_OR_RETURN(const std::string_view v, r.ReadLengthDelimited(&offset));
  out->assign(v);
  return true;
}

absl::StatusOr<bool> ReadFloat(WireReader& r, uint32_t wire_type, float* out) {
  if (wire_type != kFixed32) return false;
  ASSIGN_OR_RETURN(const uint32_t bits, r.ReadFixed32());
  static_assert(sizeof(float) == sizeof(uint32_t));
  std::memcpy(out, &bits, sizeof(bits));
  return true;
}

// An enum field: values outside [min, max] leave *out unchanged.
template <typename Enum>
absl::StatusOr<bool> ReadEnum(WireReader& r, uint32_t wire_type, int32_t min, int32_t max, Enum* out) {
  if (wire_type != kVarint) return false;
  ASSIGN_OR_RETURN(const uint64_t v, r.ReadVarint());
  const auto value = static_cast<int32_t>(static_cast<uint32_t>(v));  // int32 wire semantics
  if (value >= min && value <= max) *out = static_cast<Enum>(value);
  return true;
}

// Reads a length-delimited sub-message and hands its bytes to `parse`.
template <typename Parse>
absl::StatusOr<bool> ReadMessage(WireReader& r, uint32_t wire_type, Parse parse) {
  if (wire_type != kLengthDelimited) return false;
  size_t offset = 0;
  ASSIGN_OR_RETURN(const std::string_view v, r.ReadLengthDelimited(&offset));
  RETURN_IF_ERROR(parse(v, offset));
  return true;
}

absl::Status ParsePiece(std::string_view bytes, size_t base, ModelProto::Piece* piece) {
  return ForEachField(bytes, base, 2, [piece](WireReader& r, uint32_t field, uint32_t wt) -> absl::StatusOr<bool> {
    switch (field) {
      case 1:
        return ReadString(r, wt, &piece->piece);
      case 2:
        return ReadFloat(r, wt, &piece->score);
      case 3:
        return ReadEnum(r, wt, 1, 6, &piece->type);
      default:
        return false;
    }
  });
}

absl::Status ParseTrainerSpec(std::string_view bytes, size_t base, ModelProto::TrainerSpec* spec) {
  return ForEachField(bytes, base, 2, [spec](WireReader& r, uint32_t field, uint32_t wt) -> absl::StatusOr<bool> {
    switch (field) {
      case 3:
        return ReadEnum(r, wt, 1, 4, &spec->model_type);
      case 24:
        return ReadBool(r, wt, &spec->treat_whitespace_as_suffix);
      case 35:
        return ReadBool(r, wt, &spec->byte_fallback);
      case 44:
        return ReadString(r, wt, &spec->unk_surface);
      case 45:
        return ReadString(r, wt, &spec->unk_piece);
      case 46:
        return ReadString(r, wt, &spec->bos_piece);
      case 47:
        return ReadString(r, wt, &spec->eos_piece);
      default:
        return false;
    }
  });
}

absl::Status ParseNormalizerSpec(std::string_view bytes, size_t base, ModelProto::NormalizerSpec* spec) {
  return ForEachField(bytes, base, 2, [spec](WireReader& r, uint32_t field, uint32_t wt) -> absl::StatusOr<bool> {
    switch (field) {
      case 1:
        return ReadString(r, wt, &spec->name);
      case 2:
        return ReadString(r, wt, &spec->precompiled_charsmap);
      case 3:
        return ReadBool(r, wt, &spec->add_dummy_prefix);
      case 4:
        return ReadBool(r, wt, &spec->remove_extra_whitespaces);
      case 5:
        return ReadBool(r, wt, &spec->escape_whitespaces);
      default:
        return false;
    }
  });
}

}  // namespace

absl::StatusOr<ModelProto> ParseModelProto(std::string_view bytes) {
  ModelProto model;
  RETURN_IF_ERROR(
      ForEachField(bytes, 0, 1, [&model](WireReader& r, uint32_t field, uint32_t wt) -> absl::StatusOr<bool> {
        switch (field) {
          case 1:
            return ReadMessage(r, wt, [&model](std::string_view v, size_t offset) {
              model.pieces.emplace_back();
              return ParsePiece(v, offset, &model.pieces.back());
            });
          case 2:
            return ReadMessage(r, wt, [&model](std::string_view v, size_t offset) {
              return ParseTrainerSpec(v, offset, &model.trainer_spec);
            });
          case 3:
            return ReadMessage(r, wt, [&model](std::string_view v, size_t offset) {
              return ParseNormalizerSpec(v, offset, &model.normalizer_spec);
            });
          case 5:
            return ReadMessage(r, wt, [&model](std::string_view v, size_t offset) {
              return ParseNormalizerSpec(v, offset, &model.denormalizer_spec);
            });
          default:
            return false;
        }
      }));
  return model;
}

}  // namespace supra::tokenizer_internal

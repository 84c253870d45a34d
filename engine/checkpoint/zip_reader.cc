#include "engine/checkpoint/zip_reader.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/checkpoint/little_endian.h"
#include "engine/util/absl_compat.h"
#include "engine/util/status_macros.h"

namespace supra {
namespace {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EndSize = 56;  // up to and including the central directory offset
constexpr uint64_t kMaxCommentSize = 0xFFFF;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint32_t kSaturated32 = 0xFFFFFFFF;
constexpr uint16_t kSaturated16 = 0xFFFF;
constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kFlagDataDescriptor = 0x0008;

template <typename... Args>
absl::Status Corrupt(const std::string& path, const Args&... args) {
  return absl::DataLossError(absl::StrCat(path, ": ", args...));
}

std::string_view MethodName(uint16_t method) {
  switch (method) {
    case 0:
      return "stored";
    case 8:
      return "deflate";
    case 9:
      return "deflate64";
    case 12:
      return "bzip2";
    case 14:
      return "lzma";
    case 93:
      return "zstd";
    case 95:
      return "xz";
    default:
      return "unknown";
  }
}

// Where the central directory is, from the (ZIP64) end-of-central-directory record.
struct CentralDirectory {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t entries = 0;
  uint64_t limit = 0;  // the central directory must end before this offset
  bool zip64 = false;  // the 32-bit record defers to the ZIP64 one
};

absl::StatusOr<uint64_t> FindEndRecord(const MappedFile& file) {
  const uint64_t size = file.size();
  if (size < kEndSize) {
    return Corrupt(file.path(), "too small to be a zip archive (", size, " bytes)");
  }
  const std::byte* data = file.data();
  const uint64_t lowest = size - kEndSize > kMaxCommentSize ? size - kEndSize - kMaxCommentSize : 0;
  // Scan backwards: the record is the last one whose comment reaches exactly to the end.
  for (uint64_t pos = size - kEndSize + 1; pos-- > lowest;) {
    if (LoadLe32(data + pos) != kEndSignature) continue;
    if (pos + kEndSize + LoadLe16(data + pos + 20) == size) return pos;
  }
  return Corrupt(file.path(), "no end-of-central-directory record (not a zip archive, or truncated)");
}

absl::StatusOr<CentralDirectory> ReadZip64End(const MappedFile& file, uint64_t locator_pos, bool saturated) {
  const std::string& path = file.path();
  const std::byte* locator = file.data() + locator_pos;
  const uint32_t end_disk = LoadLe32(locator + 4);
  const uint64_t end_offset = LoadLe64(locator + 8);
  const uint32_t total_disks = LoadLe32(locator + 16);
  if (end_disk != 0 || total_disks > 1) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": multi-disk zip archives are not supported"));
  }
  // The ZIP64 record must lie before its locator.
  if (!RangeFits(end_offset, kZip64EndSize, locator_pos)) {
    return Corrupt(path, "ZIP64 end-of-central-directory record at offset ", end_offset, " lies outside the archive");
  }
  const std::byte* rec = file.data() + end_offset;
  if (LoadLe32(rec) != kZip64EndSignature) {
    return Corrupt(path, "bad ZIP64 end-of-central-directory signature at offset ", end_offset);
  }
  const uint64_t record_size = LoadLe64(rec + 4);  // excludes the first 12 bytes
  if (record_size < kZip64EndSize - 12 || !RangeFits(end_offset + 12, record_size, locator_pos)) {
    return Corrupt(path, "ZIP64 end-of-central-directory record has a bad size (", record_size, ")");
  }
  const uint32_t disk = LoadLe32(rec + 16);
  const uint32_t cd_disk = LoadLe32(rec + 20);
  const uint64_t entries_here = LoadLe64(rec + 24);
  CentralDirectory cd;
  cd.entries = LoadLe64(rec + 32);
  cd.size = LoadLe64(rec + 40);
  cd.offset = LoadLe64(rec + 48);
  cd.limit = end_offset;
  cd.zip64 = saturated;
  if (disk != 0 || cd_disk != 0 || entries_here != cd.entries) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": multi-disk zip archives are not supported"));
  }
  return cd;
}

absl::StatusOr<CentralDirectory> ReadEndRecords(const MappedFile& file) {
  const std::string& path = file.path();
  ASSIGN_OR_RETURN(const uint64_t end_pos, FindEndRecord(file));
  const std::byte* rec = file.data() + end_pos;
  const uint16_t disk = LoadLe16(rec + 4);
  const uint16_t cd_disk = LoadLe16(rec + 6);
  const uint16_t entries_here = LoadLe16(rec + 8);
  CentralDirectory cd;
  cd.entries = LoadLe16(rec + 10);
  cd.size = LoadLe32(rec + 12);
  cd.offset = LoadLe32(rec + 16);
  cd.limit = end_pos;
  const bool saturated = cd.entries == kSaturated16 || cd.size == kSaturated32 || cd.offset == kSaturated32;
  // A ZIP64 record, when present, is authoritative even where the 32-bit fields are not saturated.
  if (end_pos >= kZip64LocatorSize && LoadLe32(rec - kZip64LocatorSize) == kZip64LocatorSignature) {
    return ReadZip64End(file, end_pos - kZip64LocatorSize, saturated);
  }
  if (saturated) {
    return Corrupt(path, "end-of-central-directory record defers to ZIP64, but there is no ZIP64 locator");
  }
  if (disk != 0 || cd_disk != 0 || entries_here != cd.entries) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": multi-disk zip archives are not supported"));
  }
  return cd;
}

// Fields a header left saturated (0xFFFFFFFF / 0xFFFF) and that therefore live in
// the ZIP64 extended-information extra field, in the order the extra stores them.
struct Zip64Fields {
  uint64_t* uncompressed_size = nullptr;
  uint64_t* compressed_size = nullptr;
  uint64_t* local_header_offset = nullptr;
  uint32_t* disk = nullptr;
};

// Resolves `fields` from the ZIP64 extra inside `extra`. `where` names the header in messages.
absl::Status ResolveZip64(std::span<const std::byte> extra, const Zip64Fields& fields, const std::string& path,
                          const std::string& where) {
  const bool needed = fields.uncompressed_size || fields.compressed_size || fields.local_header_offset || fields.disk;
  uint64_t pos = 0;
  while (pos + 4 <= extra.size()) {
    const uint16_t id = LoadLe16(extra.data() + pos);
    const uint16_t length = LoadLe16(extra.data() + pos + 2);
    pos += 4;
    if (length > extra.size() - pos) {
      return Corrupt(path, where, ": extra field 0x", absl::Hex(id), " runs past the end of the extra data");
    }
    if (id == kZip64ExtraId) {
      if (!needed) return absl::OkStatus();  // sizes fit in 32 bits; the extra is redundant
      std::span<const std::byte> body = extra.subspan(static_cast<size_t>(pos), length);
      size_t at = 0;
      auto take = [&](uint64_t* out, size_t width) -> bool {
        if (out == nullptr) return true;
        if (body.size() - at < width) return false;
        *out = LoadLittleEndian(body.data() + at, static_cast<int>(width));
        at += width;
        return true;
      };
      uint64_t disk = 0;
      if (!take(fields.uncompressed_size, 8) || !take(fields.compressed_size, 8) ||
          !take(fields.local_header_offset, 8) || !take(fields.disk ? &disk : nullptr, 4)) {
        return Corrupt(path, where, ": ZIP64 extra field is too short (", length, " bytes)");
      }
      if (fields.disk) *fields.disk = static_cast<uint32_t>(disk);
      return absl::OkStatus();
    }
    pos += length;
  }
  if (needed) return Corrupt(path, where, ": 32-bit size or offset is saturated but there is no ZIP64 extra field");
  return absl::OkStatus();
}

// Reads the local header of `entry` (central values already resolved) and sets data_offset.
absl::Status ReadLocalHeader(const MappedFile& file, uint64_t limit, ZipEntry& entry) {
  const std::string& path = file.path();
  const std::string where = absl::StrCat("entry '", entry.name, "'");
  if (!RangeFits(entry.local_header_offset, kLocalHeaderSize, limit)) {
    return Corrupt(path, where, ": local header offset ", entry.local_header_offset, " lies outside the data area (",
                   limit, " bytes)");
  }
  const std::byte* h = file.data() + entry.local_header_offset;
  if (LoadLe32(h) != kLocalHeaderSignature) {
    return Corrupt(path, where, ": bad local header signature at offset ", entry.local_header_offset);
  }
  const uint16_t flags = LoadLe16(h + 6);
  const uint16_t method = LoadLe16(h + 8);
  uint64_t compressed = LoadLe32(h + 18);
  uint64_t uncompressed = LoadLe32(h + 22);
  const uint64_t name_length = LoadLe16(h + 26);
  const uint64_t extra_length = LoadLe16(h + 28);
  const uint64_t name_pos = entry.local_header_offset + kLocalHeaderSize;
  if (!RangeFits(name_pos, name_length + extra_length, limit)) {
    return Corrupt(path, where, ": local header runs past the data area");
  }
  const std::string_view local_name(reinterpret_cast<const char*>(file.data() + name_pos), name_length);
  if (local_name != entry.name) {
    return Corrupt(path, where, ": local header names '", ToAbsl(local_name), "'");
  }
  if (method != entry.method) {
    return Corrupt(path, where, ": local header method ", method, " differs from the central directory's ",
                   entry.method);
  }
  // With a data descriptor the local sizes are placeholders; the central ones rule.
  if ((flags & kFlagDataDescriptor) == 0) {
    Zip64Fields fields;
    if (uncompressed == kSaturated32) fields.uncompressed_size = &uncompressed;
    if (compressed == kSaturated32) fields.compressed_size = &compressed;
    RETURN_IF_ERROR(ResolveZip64(std::span(file.data() + name_pos + name_length, extra_length), fields, path,
                                 absl::StrCat(where, " (local header)")));
    if (compressed != entry.compressed_size || uncompressed != entry.uncompressed_size) {
      return Corrupt(path, where, ": local header sizes (", compressed, ", ", uncompressed,
                     ") differ from the central directory's (", entry.compressed_size, ", ", entry.uncompressed_size,
                     ")");
    }
  }
  entry.data_offset = name_pos + name_length + extra_length;
  if (!RangeFits(entry.data_offset, entry.compressed_size, limit)) {
    return Corrupt(path, where, ": data at offset ", entry.data_offset, " (", entry.compressed_size,
                   " bytes) runs past the data area (", limit, " bytes)");
  }
  return absl::OkStatus();
}

// Parses the central header at `pos` of `cd` into `entry`; returns the next header's position.
absl::StatusOr<uint64_t> ReadCentralHeader(const MappedFile& file, std::span<const std::byte> cd, uint64_t pos,
                                           uint64_t index, ZipEntry& entry) {
  const std::string& path = file.path();
  if (!RangeFits(pos, kCentralHeaderSize, cd.size())) {
    return Corrupt(path, "central directory ends inside header ", index);
  }
  const std::byte* h = cd.data() + pos;
  if (LoadLe32(h) != kCentralHeaderSignature) {
    return Corrupt(path, "bad central header signature for entry ", index);
  }
  entry.flags = LoadLe16(h + 8);
  entry.method = LoadLe16(h + 10);
  entry.compressed_size = LoadLe32(h + 20);
  entry.uncompressed_size = LoadLe32(h + 24);
  const uint64_t name_length = LoadLe16(h + 28);
  const uint64_t extra_length = LoadLe16(h + 30);
  const uint64_t comment_length = LoadLe16(h + 32);
  uint32_t disk = LoadLe16(h + 34);
  entry.local_header_offset = LoadLe32(h + 42);
  const uint64_t variable = name_length + extra_length + comment_length;
  if (!RangeFits(pos + kCentralHeaderSize, variable, cd.size())) {
    return Corrupt(path, "central header ", index, " runs past the central directory");
  }
  entry.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_length);

  Zip64Fields fields;
  if (entry.uncompressed_size == kSaturated32) fields.uncompressed_size = &entry.uncompressed_size;
  if (entry.compressed_size == kSaturated32) fields.compressed_size = &entry.compressed_size;
  if (entry.local_header_offset == kSaturated32) fields.local_header_offset = &entry.local_header_offset;
  if (disk == kSaturated16) fields.disk = &disk;
  entry.zip64 = fields.uncompressed_size || fields.compressed_size || fields.local_header_offset || fields.disk;
  RETURN_IF_ERROR(ResolveZip64(std::span(h + kCentralHeaderSize + name_length, extra_length), fields, path,
                               absl::StrCat("entry '", entry.name, "'")));
  if (disk != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": entry '", entry.name, "' is on disk ", disk, "; multi-disk archives are not supported"));
  }
  return pos + kCentralHeaderSize + variable;
}

}  // namespace

absl::StatusOr<ZipArchive> ZipArchive::Open(std::shared_ptr<const MappedFile> file) {
  const std::string& path = file->path();
  ASSIGN_OR_RETURN(const CentralDirectory cd, ReadEndRecords(*file));
  if (!RangeFits(cd.offset, cd.size, cd.limit)) {
    return Corrupt(path, "central directory at offset ", cd.offset, " (", cd.size, " bytes) lies outside the archive (",
                   cd.limit, " bytes before the end record)");
  }
  if (cd.entries > cd.size / kCentralHeaderSize) {
    return Corrupt(path, "central directory of ", cd.size, " bytes cannot hold ", cd.entries, " entries");
  }
  const std::span<const std::byte> directory = file->bytes().subspan(cd.offset, cd.size);

  ZipArchive archive;
  archive.zip64_ = cd.zip64;
  // Grown as headers parse, so a corrupt count cannot demand a huge allocation up front.
  archive.entries_.reserve(std::min<uint64_t>(cd.entries, 4096));
  uint64_t pos = 0;
  for (uint64_t i = 0; i < cd.entries; ++i) {
    ZipEntry& entry = archive.entries_.emplace_back();
    ASSIGN_OR_RETURN(pos, ReadCentralHeader(*file, directory, pos, i, entry));
    // Entry data lies before the central directory.
    RETURN_IF_ERROR(ReadLocalHeader(*file, cd.offset, entry));
    archive.zip64_ = archive.zip64_ || entry.zip64;
    if (!archive.index_.emplace(entry.name, i).second) {
      return Corrupt(path, "entry '", entry.name, "' appears twice");
    }
  }
  archive.file_ = std::move(file);
  return archive;
}

const ZipEntry* ZipArchive::Find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

absl::StatusOr<std::span<const std::byte>> ZipArchive::Contents(const ZipEntry& entry) const {
  if (entry.flags & kFlagEncrypted) {
    return absl::InvalidArgumentError(absl::StrCat(path(), ": entry '", entry.name,
                                                   "' is encrypted; only stored, unencrypted entries are supported"));
  }
  if (entry.method != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path(), ": entry '", entry.name, "' uses compression method ",
                                                   entry.method, " (", ToAbsl(MethodName(entry.method)),
                                                   "); only stored (uncompressed) entries are supported"));
  }
  if (entry.compressed_size != entry.uncompressed_size) {
    return Corrupt(path(), "stored entry '", entry.name, "' has compressed size ", entry.compressed_size,
                   " but uncompressed size ", entry.uncompressed_size);
  }
  return file_->Slice(entry.data_offset, entry.compressed_size, absl::StrCat("entry '", entry.name, "'"));
}

}  // namespace supra

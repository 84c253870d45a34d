// Central-directory reader for zip archives held in a memory-mapped file, as
// written by torch.save (stored entries, 64-byte aligned data, ZIP64 records
// once the archive passes 4 GiB).
//
// Open() walks the end-of-central-directory record (and its ZIP64 locator and
// record), every central header (with its ZIP64 extended-information extra) and
// every local header (whose extra length may differ from the central one:
// PyTorch pads it to align the data). Every offset and size is checked against
// the file before it is read. Entry contents are returned as spans into the
// mapping: nothing is copied and nothing is decompressed; only stored (method 0)
// entries can be read.
#ifndef SUPRA_ENGINE_CHECKPOINT_ZIP_READER_H_
#define SUPRA_ENGINE_CHECKPOINT_ZIP_READER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/util/mapped_file.h"

namespace supra {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 = stored, 8 = deflate, ...
  uint16_t flags = 0;   // general-purpose bit flags from the central header
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;  // first byte of the entry's data in the file
  bool zip64 = false;        // a size or offset came from a ZIP64 extended-information field
};

class ZipArchive {
 public:
  // Parses the archive. DATA_LOSS for a truncated or corrupt file (the message names
  // the file, and the entry where there is one); INVALID_ARGUMENT for multi-disk
  // archives.
  static absl::StatusOr<ZipArchive> Open(std::shared_ptr<const MappedFile> file);

  // In central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // The entry called `name`, or nullptr.
  const ZipEntry* Find(std::string_view name) const;
  // The bytes of a stored entry. INVALID_ARGUMENT (naming the entry and the method)
  // for compressed or encrypted entries.
  absl::StatusOr<std::span<const std::byte>> Contents(const ZipEntry& entry) const;

  // True when the archive needs ZIP64: an entry's size or offset, or the central
  // directory's size, offset or entry count, is only recorded in a ZIP64 field.
  // (torch.save writes a ZIP64 end record into every archive, even tiny ones; that
  // alone does not count.)
  bool zip64() const { return zip64_; }
  const std::shared_ptr<const MappedFile>& file() const { return file_; }
  const std::string& path() const { return file_->path(); }

 private:
  ZipArchive() = default;

  std::shared_ptr<const MappedFile> file_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in entries_
  bool zip64_ = false;
};

}  // namespace supra

#endif  // SUPRA_ENGINE_CHECKPOINT_ZIP_READER_H_

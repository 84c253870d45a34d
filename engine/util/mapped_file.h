// Read-only memory mapping of a whole file, plus bounds-checked sub-spans.
//
// Checkpoint readers map weight files instead of reading them, so opening a
// 31 GB checkpoint costs no copy and tensors are paged in on first use. Every
// extent a reader takes from the mapping goes through SubSpan, which checks it
// against the size the file had when it was opened before any byte is touched.
// (A file truncated by another process *after* it was mapped can still raise
// SIGBUS on access; nothing short of copying the file prevents that.)
#ifndef SUPRA_ENGINE_UTIL_MAPPED_FILE_H_
#define SUPRA_ENGINE_UTIL_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace supra {

class MappedFile {
 public:
  // Maps `path` read-only. Errors: NOT_FOUND when it does not exist, FAILED_PRECONDITION
  // when it is not a regular file, otherwise the errno of the failing call. An empty
  // file maps to an empty span (mmap refuses length 0).
  static absl::StatusOr<std::shared_ptr<const MappedFile>> Open(const std::string& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, static_cast<size_t>(size_)}; }
  const std::string& path() const { return path_; }

  // [offset, offset + length) of the file, or DATA_LOSS naming the file and `what`
  // when it does not lie inside it.
  absl::StatusOr<std::span<const std::byte>> Slice(uint64_t offset, uint64_t length, std::string_view what) const;

 private:
  MappedFile() = default;
  void Unmap();

  std::string path_;
  const std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

// [offset, offset + length) of `whole`, or DATA_LOSS "<context>: <what> [a, a+n) lies
// outside the N bytes available" when it does not fit. Overflow-safe: never forms
// an out-of-range pointer.
absl::StatusOr<std::span<const std::byte>> SubSpan(std::span<const std::byte> whole, uint64_t offset, uint64_t length,
                                                   std::string_view context, std::string_view what);

// True when [offset, offset + length) lies inside [0, limit), without overflow.
constexpr bool RangeFits(uint64_t offset, uint64_t length, uint64_t limit) {
  return offset <= limit && length <= limit - offset;
}

}  // namespace supra

#endif  // SUPRA_ENGINE_UTIL_MAPPED_FILE_H_

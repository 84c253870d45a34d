#include "engine/util/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/util/absl_compat.h"

namespace supra {
namespace {

absl::Status ErrnoError(int error_number, std::string_view call, const std::string& path) {
  return absl::ErrnoToStatus(error_number, absl::StrCat(ToAbsl(call), " '", path, "'"));
}

// Closes the descriptor on every return path; the mapping outlives it.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const MappedFile>> MappedFile::Open(const std::string& path) {
  int raw_fd;
  do {
    raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (raw_fd < 0 && errno == EINTR);
  if (raw_fd < 0) return ErrnoError(errno, "cannot open", path);
  ScopedFd fd(raw_fd);

  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "cannot stat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("'", path, "' is not a regular file"));
  }

  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (file->size_ == 0) return file;
  if (file->size_ > SIZE_MAX) {
    return absl::ResourceExhaustedError(absl::StrCat("'", path, "' is too large to map"));
  }

  void* addr = ::mmap(nullptr, static_cast<size_t>(file->size_), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (addr == MAP_FAILED) return ErrnoError(errno, "cannot mmap", path);
  file->data_ = static_cast<const std::byte*>(addr);
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Unmap();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { Unmap(); }

void MappedFile::Unmap() {
  if (data_ != nullptr) {
    // const_cast: munmap takes void*; the mapping was created read-only by Open.
    ::munmap(const_cast<std::byte*>(data_), static_cast<size_t>(size_));
  }
  data_ = nullptr;
  size_ = 0;
}

absl::StatusOr<std::span<const std::byte>> MappedFile::Slice(uint64_t offset, uint64_t length,
                                                             std::string_view what) const {
  return SubSpan(bytes(), offset, length, path_, what);
}

absl::StatusOr<std::span<const std::byte>> SubSpan(std::span<const std::byte> whole, uint64_t offset, uint64_t length,
                                                   std::string_view context, std::string_view what) {
  if (!RangeFits(offset, length, whole.size())) {
    return absl::DataLossError(absl::StrCat(ToAbsl(context), ": ", ToAbsl(what), " at offset ", offset, " (", length,
                                            " bytes) lies outside the ", whole.size(), " bytes available"));
  }
  return whole.subspan(static_cast<size_t>(offset), static_cast<size_t>(length));
}

}  // namespace supra

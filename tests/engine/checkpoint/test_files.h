// Helpers for the checkpoint tests: temporary directories, file I/O, and
// writers for the formats under test (zip, safetensors, pickle, torch.save
// archives) so that each test can build exactly the file it needs, good or broken.
#ifndef SUPRA_TESTS_ENGINE_CHECKPOINT_TEST_FILES_H_
#define SUPRA_TESTS_ENGINE_CHECKPOINT_TEST_FILES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace supra::testing {

// tests/data/models/<name>.
std::string ModelDir(std::string_view name);

// A fresh directory under the test temp dir, removed (with its contents) on destruction.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // path()/name
  std::string File(std::string_view name) const;
  // Writes `bytes` to path()/name and returns that path.
  std::string Write(std::string_view name, std::string_view bytes) const;

 private:
  std::string path_;
};

// Whole-file I/O; failures are reported as test failures.
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, std::string_view bytes);

// Appends `value` as `width` little-endian bytes.
void PutLe(std::string& out, uint64_t value, int width);
// Overwrites `width` bytes at `offset` with `value`, little-endian.
void PatchLe(std::string& bytes, size_t offset, uint64_t value, int width);
// Offset of the first (or, with `last`, the last) occurrence of `needle`; fails the test if absent.
size_t Find(const std::string& haystack, std::string_view needle, bool last = false);

// ---- zip -------------------------------------------------------------------
struct ZipEntrySpec {
  std::string name;
  std::string data;
  uint16_t method = 0;  // written as given; the data is never actually compressed
  uint16_t flags = 0;   // extra general-purpose flags (e.g. 1: encrypted)
};
struct ZipOptions {
  // ZIP64 everywhere: saturated 32-bit fields with ZIP64 extras in central and
  // local headers, a ZIP64 end record, a saturated classic end record.
  bool zip64 = false;
  // As torch.save writes: data descriptors after the data (local sizes zero),
  // data aligned to 64 bytes by an "FB" extra field, and an (unsaturated) ZIP64
  // end record even for small archives. Ignored where `zip64` decides.
  bool torch_style = false;
  std::string comment;
};
std::string BuildZip(const std::vector<ZipEntrySpec>& entries, const ZipOptions& options = {});

// ---- safetensors -----------------------------------------------------------
struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // "F32", ...
  std::vector<uint64_t> shape;
  std::string data;
};
// A well-formed file; offsets are laid out in order.
std::string BuildSafetensors(const std::vector<SafetensorsTensor>& tensors);
// Header length, `header` verbatim, then `data`.
std::string BuildSafetensorsRaw(std::string_view header, std::string_view data);

// ---- pickle ----------------------------------------------------------------
// Emits pickle opcodes; names follow Python's pickletools.
class PickleWriter {
 public:
  PickleWriter& Proto(int version);
  PickleWriter& Op(uint8_t opcode);  // any single-byte opcode
  PickleWriter& Global(std::string_view module, std::string_view name);
  PickleWriter& Int(int64_t value);  // BININT1 / BININT2 / BININT / LONG1 as needed
  PickleWriter& Float(double value);
  PickleWriter& Str(std::string_view text);  // BINUNICODE
  PickleWriter& Put(uint32_t index);         // BINPUT or LONG_BINPUT
  PickleWriter& Get(uint32_t index);         // BINGET or LONG_BINGET
  PickleWriter& Raw(std::string_view bytes);
  PickleWriter& Stop();
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// ---- torch.save archives ---------------------------------------------------
struct TorchTensorSpec {
  std::string name;
  std::string storage_type = "FloatStorage";
  std::string key;
  int64_t storage_numel = 0;
  int64_t offset = 0;
  std::vector<int64_t> size;
  std::vector<int64_t> stride;  // empty: contiguous
  bool parameter = false;       // wrap in torch._utils._rebuild_parameter
};
// The data.pkl torch.save writes for an OrderedDict state dict of these tensors.
std::string TorchStateDictPickle(const std::vector<TorchTensorSpec>& tensors);
// A torch.save archive: <prefix>/data.pkl, <prefix>/data/<key> for each storage,
// <prefix>/byteorder (if not empty) and <prefix>/version.
std::string BuildTorchZip(const std::string& prefix, const std::string& pickle,
                          const std::vector<std::pair<std::string, std::string>>& storages,
                          const ZipOptions& options = {.torch_style = true}, const std::string& byteorder = "little");

// Bytes of float32 / int values.
std::string F32Bytes(const std::vector<float>& values);
std::string U16Bytes(const std::vector<uint16_t>& values);

}  // namespace supra::testing

#endif  // SUPRA_TESTS_ENGINE_CHECKPOINT_TEST_FILES_H_

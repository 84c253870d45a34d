// A model checkpoint opened for reading: named tensors whose bytes live in
// memory-mapped files (or, for tests and converters, in owned buffers).
//
// OpenCheckpoint(dir) picks the format from the files present, preferring
// them in this order:
//   model.safetensors, model.safetensors.index.json (+ shards),
//   pytorch_model.bin, pytorch_model.bin.index.json (+ shards)
// Every extent is checked against its file's size before the mapping is
// touched, so a truncated or corrupt file is an error, never a crash.
#ifndef SUPRA_ENGINE_CHECKPOINT_CHECKPOINT_H_
#define SUPRA_ENGINE_CHECKPOINT_CHECKPOINT_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/util/dtype.h"

namespace supra {

// A read-only view of one stored tensor. Row-major and contiguous; `data` may
// be unaligned (PyTorch zip entries are aligned, safetensors data need not be).
struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // as stored, e.g. [out_features, in_features]
  const std::byte* data = nullptr;
  size_t nbytes = 0;   // == numel() * DTypeSize(dtype)
  std::string source;  // file (and entry) it came from, for messages

  int64_t numel() const;
};

class Checkpoint {
 public:
  Checkpoint() = default;
  Checkpoint(Checkpoint&&) = default;
  Checkpoint& operator=(Checkpoint&&) = default;

  // The tensor called `name`, or nullptr.
  const TensorView* Find(const std::string& name) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  // Short description of the format, e.g. "pytorch zip (zip64), 1 file".
  const std::string& format() const { return format_; }

  // Used by the readers and by tests that build checkpoints in memory.
  absl::Status Add(std::string name, TensorView view);
  // Moves every tensor of `other` (and what keeps its bytes alive) into this one;
  // a name present in both is INVALID_ARGUMENT, as for Add.
  absl::Status Merge(Checkpoint&& other);
  void KeepAlive(std::shared_ptr<const void> backing) { backing_.push_back(std::move(backing)); }
  void set_format(std::string format) { format_ = std::move(format); }

 private:
  std::map<std::string, TensorView> tensors_;
  std::vector<std::shared_ptr<const void>> backing_;  // mapped files / buffers the views point into
  std::string format_;
};

// Opens the weights in model directory `dir` (see the file comment). When several
// of those files are present, the first in the order above is used and format()
// names it and the ignored ones, e.g. "safetensors, model.safetensors (ignored:
// pytorch_model.bin)". NOT_FOUND, listing the names looked for, when `dir` is
// missing or holds none of them. Every other error names the file (and tensor).
absl::StatusOr<Checkpoint> OpenCheckpoint(const std::string& dir);

// Single-file readers, also used for shards. DATA_LOSS for truncated or corrupt
// content, INVALID_ARGUMENT for well-formed content this reader does not support
// (a dtype, a compression method, a non-contiguous tensor), NOT_FOUND for a missing
// file. format() is "safetensors", "pytorch zip" or "pytorch zip (zip64)".
absl::StatusOr<Checkpoint> ReadSafetensors(const std::string& path);
absl::StatusOr<Checkpoint> ReadPytorchZip(const std::string& path);

}  // namespace supra

#endif  // SUPRA_ENGINE_CHECKPOINT_CHECKPOINT_H_

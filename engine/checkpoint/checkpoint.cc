#include "engine/checkpoint/checkpoint.h"

#include <filesystem>
#include <string_view>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/checkpoint/shard_index.h"
#include "engine/util/status_macros.h"

namespace supra {
namespace {

struct WeightsFile {
  const char* name;
  ShardReader read;
  bool index;  // a shard index rather than the weights themselves
};

// In order of preference: safetensors (no pickle to interpret, no zip to walk), then
// the single file before its sharded form.
constexpr WeightsFile kWeightsFiles[] = {
    {"model.safetensors", &ReadSafetensors, false},
    {"model.safetensors.index.json", &ReadSafetensors, true},
    {"pytorch_model.bin", &ReadPytorchZip, false},
    {"pytorch_model.bin.index.json", &ReadPytorchZip, true},
};

std::string LookedFor() {
  std::vector<std::string> names;
  for (const WeightsFile& file : kWeightsFiles) names.push_back(file.name);
  return absl::StrJoin(names, ", ");
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const TensorView* Checkpoint::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::Status Checkpoint::Add(std::string name, TensorView view) {
  if (tensors_.contains(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' appears twice (in ", tensors_[name].source, " and ", view.source, ")"));
  }
  tensors_.emplace(std::move(name), std::move(view));
  return absl::OkStatus();
}

absl::Status Checkpoint::Merge(Checkpoint&& other) {
  for (auto& [name, view] : other.tensors_) {
    if (const TensorView* existing = Find(name); existing != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' appears twice (in ", existing->source, " and ", view.source, ")"));
    }
  }
  tensors_.merge(other.tensors_);
  for (auto& backing : other.backing_) backing_.push_back(std::move(backing));
  other.backing_.clear();
  return absl::OkStatus();
}

absl::StatusOr<Checkpoint> OpenCheckpoint(const std::string& dir) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("model directory '", dir,
                                            "' does not exist or is not a directory (looked for ", LookedFor(), ")"));
  }
  const WeightsFile* chosen = nullptr;
  std::vector<std::string> ignored;
  for (const WeightsFile& file : kWeightsFiles) {
    // is_regular_file follows symlinks, as in a Hugging Face cache snapshot.
    if (!std::filesystem::is_regular_file(std::filesystem::path(dir) / file.name, error)) continue;
    if (chosen == nullptr) {
      chosen = &file;
    } else {
      ignored.push_back(file.name);
    }
  }
  if (chosen == nullptr) {
    return absl::NotFoundError(absl::StrCat("no weights in '", dir, "': looked for ", LookedFor()));
  }
  const std::string path = (std::filesystem::path(dir) / chosen->name).string();
  ASSIGN_OR_RETURN(Checkpoint checkpoint,
                   chosen->index ? ReadShardedCheckpoint(path, chosen->read) : chosen->read(path));
  std::string format = chosen->index ? checkpoint.format() : absl::StrCat(checkpoint.format(), ", ", chosen->name);
  if (!ignored.empty()) absl::StrAppend(&format, " (ignored: ", absl::StrJoin(ignored, ", "), ")");
  checkpoint.set_format(std::move(format));
  return checkpoint;
}

}  // namespace supra

#include "engine/checkpoint/shard_index.h"

#include <filesystem>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/util/absl_compat.h"
#include "engine/util/mapped_file.h"
#include "engine/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace supra {
namespace {

// Index files are a few hundred kilobytes even for the largest models.
constexpr uint64_t kMaxIndexSize = 100'000'000;

bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

struct Shard {
  std::string file;
  std::set<std::string> tensors;  // the weight_map's tensors for this shard
};

// The weight_map, grouped by shard in order of first appearance.
absl::StatusOr<std::vector<Shard>> ReadIndex(const std::string& index_path) {
  ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::Open(index_path));
  if (file->size() > kMaxIndexSize) {
    return absl::DataLossError(absl::StrCat(index_path, ": index of ", file->size(), " bytes is implausibly large"));
  }
  const char* text = reinterpret_cast<const char*>(file->data());
  const nlohmann::json index = nlohmann::json::parse(text, text + file->size(), nullptr, false);
  if (index.is_discarded()) return absl::DataLossError(absl::StrCat(index_path, ": not valid JSON"));
  const auto map_it = index.is_object() ? index.find("weight_map") : index.end();
  if (map_it == index.end() || !map_it->is_object()) {
    return absl::DataLossError(absl::StrCat(index_path, ": no \"weight_map\" object"));
  }
  if (map_it->empty()) return absl::DataLossError(absl::StrCat(index_path, ": \"weight_map\" is empty"));

  std::vector<Shard> shards;
  std::map<std::string, size_t> shard_of_file;
  for (const auto& [tensor, shard_file] : map_it->items()) {
    if (!shard_file.is_string()) {
      return absl::DataLossError(absl::StrCat(index_path, ": tensor '", tensor, "' maps to a non-string"));
    }
    const std::string& name = shard_file.get_ref<const std::string&>();
    if (!IsPlainFileName(name)) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": tensor '", tensor, "' names shard '", name,
                                                     "', which is not a plain file name in the model directory"));
    }
    auto [it, inserted] = shard_of_file.emplace(name, shards.size());
    if (inserted) shards.push_back(Shard{name, {}});
    shards[it->second].tensors.insert(tensor);
  }
  return shards;
}

}  // namespace

absl::StatusOr<Checkpoint> ReadShardedCheckpoint(const std::string& index_path, ShardReader read_shard) {
  ASSIGN_OR_RETURN(const std::vector<Shard> shards, ReadIndex(index_path));
  const std::filesystem::path dir = std::filesystem::path(index_path).parent_path();
  const std::string index_name = std::filesystem::path(index_path).filename().string();

  Checkpoint merged;
  std::string shard_format;
  for (const Shard& shard : shards) {
    const std::string shard_path = (dir / shard.file).string();
    absl::StatusOr<Checkpoint> part = read_shard(shard_path);
    if (!part.ok()) {
      return absl::Status(part.status().code(), absl::StrCat("shard '", shard.file, "' named by ", index_path, ": ",
                                                             part.status().message()));
    }
    for (const auto& [name, view] : part->tensors()) {
      if (!shard.tensors.contains(name)) {
        return absl::DataLossError(absl::StrCat(shard_path, ": tensor '", name,
                                                "' is not listed for this shard in the weight_map of ", index_path));
      }
    }
    for (const std::string& name : shard.tensors) {
      if (part->Find(name) == nullptr) {
        return absl::DataLossError(
            absl::StrCat(index_path, ": tensor '", name, "' is not in its shard '", shard.file, "'"));
      }
    }
    // Shards share a format, but only the large ones need ZIP64: say so if any does.
    if (shard_format.empty() || part->format().find("zip64") != std::string::npos) shard_format = part->format();
    RETURN_IF_ERROR(merged.Merge(*std::move(part)));
  }
  merged.set_format(
      absl::StrCat(shard_format, ", ", shards.size(), shards.size() == 1 ? " shard (" : " shards (", index_name, ")"));
  return merged;
}

}  // namespace supra

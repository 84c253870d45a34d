// Sharded checkpoints: an index file
//   {"metadata": {...}, "weight_map": {"tensor name": "shard file name", ...}}
// next to the shard files it names, as written by Hugging Face's save_pretrained.
#ifndef SUPRA_ENGINE_CHECKPOINT_SHARD_INDEX_H_
#define SUPRA_ENGINE_CHECKPOINT_SHARD_INDEX_H_

#include <string>

#include "absl/status/statusor.h"
#include "engine/checkpoint/checkpoint.h"

namespace supra {

// Reads one shard file (ReadSafetensors or ReadPytorchZip).
using ShardReader = absl::StatusOr<Checkpoint> (*)(const std::string& path);

// Opens every shard named by the index at `index_path` once, with `read_shard`, and
// merges them. Shard names must be plain file names in the index's directory. Every
// tensor of the weight_map must be in the shard it names, and every tensor of a shard
// must be in the weight_map (under that shard): anything else is DATA_LOSS naming the
// file and the tensor. The result's format() is "<shard format>, N shards (<index>)".
absl::StatusOr<Checkpoint> ReadShardedCheckpoint(const std::string& index_path, ShardReader read_shard);

}  // namespace supra

#endif  // SUPRA_ENGINE_CHECKPOINT_SHARD_INDEX_H_

// A model fingerprint: identifies the exact weights, config and tokenizer a
// session state was computed with, so a state is never resumed on another
// model. Cheap on a 31 GB checkpoint: it hashes the config and tokenizer files,
// the tensor table (names, dtypes, shapes) and the first and last bytes of
// every tensor, not all the weights.
#ifndef SUPRA_ENGINE_MODEL_FINGERPRINT_H_
#define SUPRA_ENGINE_MODEL_FINGERPRINT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/checkpoint/checkpoint.h"

namespace supra {

// 64-bit FNV-1a, continuing from `seed`.
uint64_t Fnv1a64(std::string_view bytes, uint64_t seed = 0xcbf29ce484222325ull);

// 16 hex digits.
std::string ModelFingerprint(std::string_view config_json, std::string_view tokenizer_bytes,
                             const Checkpoint& checkpoint);

}  // namespace supra

#endif  // SUPRA_ENGINE_MODEL_FINGERPRINT_H_

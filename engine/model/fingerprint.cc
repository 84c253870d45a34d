#include "engine/model/fingerprint.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace supra {

uint64_t Fnv1a64(std::string_view bytes, uint64_t seed) {
  uint64_t h = seed;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string ModelFingerprint(std::string_view config_json, std::string_view tokenizer_bytes,
                             const Checkpoint& checkpoint) {
  constexpr size_t kSample = 256;  // bytes hashed at each end of every tensor
  uint64_t h = Fnv1a64(config_json);
  h = Fnv1a64(tokenizer_bytes, h);
  for (const auto& [name, t] : checkpoint.tensors()) {
    std::string header = absl::StrCat(name, "|", static_cast<int>(t.dtype), "|", t.nbytes);
    for (int64_t d : t.shape) absl::StrAppend(&header, ",", d);
    h = Fnv1a64(header, h);
    const size_t n = std::min(kSample, t.nbytes);
    h = Fnv1a64(std::string_view(reinterpret_cast<const char*>(t.data), n), h);
    h = Fnv1a64(std::string_view(reinterpret_cast<const char*>(t.data) + t.nbytes - n, n), h);
  }
  return absl::StrFormat("%016x", h);
}

}  // namespace supra

// Unaligned little-endian loads for the binary formats the readers parse. The
// caller has already checked that the bytes lie inside the buffer.
#ifndef SUPRA_ENGINE_CHECKPOINT_LITTLE_ENDIAN_H_
#define SUPRA_ENGINE_CHECKPOINT_LITTLE_ENDIAN_H_

#include <cstddef>
#include <cstdint>

namespace supra {

inline uint64_t LoadLittleEndian(const std::byte* p, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint16_t LoadLe16(const std::byte* p) { return static_cast<uint16_t>(LoadLittleEndian(p, 2)); }
inline uint32_t LoadLe32(const std::byte* p) { return static_cast<uint32_t>(LoadLittleEndian(p, 4)); }
inline uint64_t LoadLe64(const std::byte* p) { return LoadLittleEndian(p, 8); }

}  // namespace supra

#endif  // SUPRA_ENGINE_CHECKPOINT_LITTLE_ENDIAN_H_

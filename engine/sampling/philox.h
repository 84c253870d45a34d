// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11), the counter-based generator of Random123, cuRAND and JAX. A draw is
// a pure function of (counter, key), so a request's samples depend only on
// its seed and the index of the token drawn, never on call order or on the
// other sequences of a batch. Header-only and constexpr so a CUDA sampler
// can reproduce the same draws.
#ifndef SUPRA_ENGINE_SAMPLING_PHILOX_H_
#define SUPRA_ENGINE_SAMPLING_PHILOX_H_

#include <array>
#include <cstdint>

namespace supra {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

constexpr PhiloxCounter Philox4x32_10(PhiloxCounter ctr, PhiloxKey key) {
  constexpr uint32_t kMul0 = 0xD2511F53u;
  constexpr uint32_t kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
  constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kWeyl0;
      key[1] += kWeyl1;
    }
    const uint64_t p0 = uint64_t{kMul0} * ctr[0];
    const uint64_t p1 = uint64_t{kMul1} * ctr[2];
    ctr = {static_cast<uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<uint32_t>(p0)};
  }
  return ctr;
}

// The uniform draw for token `token_index` of a request with `seed`, in
// [0, 1) with 53 random bits: Philox4x32-10 with key = seed (low word first)
// and counter = (index low, index high, 0, 0); the first two output words
// make the 64-bit value whose top 53 bits are the mantissa. Counter words 2
// and 3 stay free for further draws per token.
constexpr double UniformForToken(uint64_t seed, uint64_t token_index) {
  const PhiloxCounter out =
      Philox4x32_10({static_cast<uint32_t>(token_index), static_cast<uint32_t>(token_index >> 32), 0u, 0u},
                    {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  const uint64_t bits = (uint64_t{out[1]} << 32) | out[0];
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace supra

#endif  // SUPRA_ENGINE_SAMPLING_PHILOX_H_

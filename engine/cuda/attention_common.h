// Types shared by the linear-attention kernels (recurrent_attention.cu for
// decode, chunked_attention.cu for prefill): the head layout of one layer and
// a view of one layer of the device state pool.
#ifndef SUPRA_ENGINE_CUDA_ATTENTION_COMMON_H_
#define SUPRA_ENGINE_CUDA_ATTENTION_COMMON_H_

#include <cuda_bf16.h>

namespace supra::cuda {

// Head layout of one layer's attention (cpu::AttentionShape). Query head h
// reads key head h / (H / Hk) and value head h / (H / Hkv); Hk is H with qk
// norm (every query head has its own normalised key), else Hkv.
struct AttentionDims {
  int heads = 0;        // H
  int key_heads = 0;    // Hk, divides H
  int value_heads = 0;  // Hkv, divides H
  int features = 0;     // F
  int value_dim = 0;    // Dv
};

// One layer of the state pool [slots, layers, H, F, Dv] (T = float, or
// __nv_bfloat16 for the capacity option; the kernels accumulate in fp32
// either way). The state of sequence i at this layer starts at element
// ((slot_i · layers + layer) · H · F · Dv), computed in 64 bits: at
// Mistral-SUPRA's size it passes 2^31 from slot 128 on.
template <typename T>
struct StatePoolLayer {
  T* data = nullptr;  // [slots, layers, H, F, Dv], device
  int slots = 0;      // slots in the pool: slot ids outside [0, slots) are skipped, never dereferenced
  int layers = 0;
  int layer = 0;  // the layer this launch reads and updates, in [0, layers)
};

// Largest Dv: a head's Dv columns are split over at most 8 blocks of one
// thread-block cluster (32 columns each), which exchange GroupNorm statistics
// through distributed shared memory.
inline constexpr int kMaxAttentionValueDim = 256;

// GroupNorm's epsilon (§3.10): fixed, not the config's norm_eps.
inline constexpr float kGroupNormEps = 1e-5f;

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_ATTENTION_COMMON_H_

// The CPU reference backend: float32 weights and state, multi-threaded. The
// oracle every other backend is tested against, and usable for small models.
//
// A backend is driven by one thread at a time (it reuses its activation
// scratch from call to call); its own pool of num_threads − 1 workers splits
// each operation. Results do not depend on the thread count or on what a
// sequence is batched with. Agreement with the float64 reference on the
// tiny test models: about 1e-6 relative (tests/engine/cpu/golden_test.cc).
#ifndef SUPRA_ENGINE_CPU_CPU_BACKEND_H_
#define SUPRA_ENGINE_CPU_CPU_BACKEND_H_

#include <memory>

#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/model/config.h"

namespace supra {

struct CpuBackendOptions {
  int num_slots = 8;    // state-pool slots
  int num_threads = 0;  // 0: std::thread::hardware_concurrency()
};

// Converts the checkpoint's tensors (fp32/bf16/fp16) to float32 copies the
// backend owns; the checkpoint may be closed afterwards. The checkpoint must
// already have passed ValidateCheckpoint(config, checkpoint).
absl::StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(const ModelConfig& config, const Checkpoint& checkpoint,
                                                          const CpuBackendOptions& options);

}  // namespace supra

#endif  // SUPRA_ENGINE_CPU_CPU_BACKEND_H_

// Programmatic dependent launch (PDL, sm_90), shared by the decode kernels.
// Included by .cu files only (it has device code).
//
// A kernel launched with the attribute below may start while the kernel
// before it in the stream is still running: as soon as every block of that
// kernel has called AllowNextKernel() (or exited). It uses that time for its
// prologue (reading constant weights, computing tables) and must call
// WaitForPreviousKernel() before it reads anything the previous kernel writes
// and before it writes anything at all. The wait returns once the previous
// kernel has completed and its writes are visible; it is a no-op when the
// kernel was launched without the attribute, or when the previous operation
// in the stream is not a kernel (a copy, a cuBLAS kernel that never signals
// early: then the launch simply is not early).
//
// The rules every kernel of the chain follows, so that stream order still
// holds transitively:
//  - every block calls WaitForPreviousKernel() before it exits, on every
//    path (an early return included), so that a kernel cannot complete
//    before its predecessor has;
//  - AllowNextKernel() comes after WaitForPreviousKernel(). Then, while a
//    kernel runs its prologue, at most its immediate predecessor is still
//    running: everything earlier in the stream has completed. A prologue may
//    therefore read data written two or more operations back (the state
//    pool, positions and slots uploaded by copies) but nothing its immediate
//    predecessor writes.
// Stream capture keeps these as programmatic edges of the CUDA graph.
#ifndef SUPRA_ENGINE_CUDA_PROGRAMMATIC_LAUNCH_CUH_
#define SUPRA_ENGINE_CUDA_PROGRAMMATIC_LAUNCH_CUH_

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace supra::cuda {

// griddepcontrol.wait: blocks until the previous kernel in the stream has
// completed and its memory operations are visible. The clobber keeps the
// compiler from moving loads above it.
__device__ __forceinline__ void WaitForPreviousKernel() { asm volatile("griddepcontrol.wait;" ::: "memory"); }

// griddepcontrol.launch_dependents: this block no longer holds back the launch
// of the next kernel (if that one was launched with the attribute).
__device__ __forceinline__ void AllowNextKernel() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

// False when the environment sets SUPRA_CUDA_PDL=0: every launch is then
// serialised as usual (for measuring what PDL gains). Read once.
inline bool ProgrammaticLaunchEnabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("SUPRA_CUDA_PDL");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return enabled;
}

// The launch attribute that lets a kernel start before its predecessor ends.
inline cudaLaunchAttribute ProgrammaticLaunchAttribute() {
  cudaLaunchAttribute attribute = {};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = ProgrammaticLaunchEnabled() ? 1 : 0;
  return attribute;
}

// kernel<<<grid, block, shared_bytes, stream>>>(args...) with programmatic
// dependent launch. The kernel must follow the rules above.
template <typename... Params, typename... Args>
cudaError_t LaunchProgrammatic(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                               cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attribute = ProgrammaticLaunchAttribute();
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace supra::cuda

#endif  // SUPRA_ENGINE_CUDA_PROGRAMMATIC_LAUNCH_CUH_

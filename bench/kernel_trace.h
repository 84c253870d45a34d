// The GPU timeline of a region of a benchmark: every kernel and copy with its
// start and end on the GPU's clock, from CUPTI's activity API. Unlike a
// profiler that replays kernels one at a time, this sees them as they run in
// the stream (overlapped by programmatic launch, inside CUDA graphs), so the
// gaps between them and each kernel's in-stream time can be read off.
//
//   if (!KernelTrace::Begin(&error)) ...;   // starts recording
//   ... the region ...; cudaDeviceSynchronize();
//   std::vector<TraceEvent> events = KernelTrace::End();
#ifndef SUPRA_BENCH_KERNEL_TRACE_H_
#define SUPRA_BENCH_KERNEL_TRACE_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace supra::bench {

struct TraceEvent {
  std::string name;  // demangled kernel name, or "copy HtoD" / "copy DtoH" / "copy DtoD" / "memset"
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  int64_t bytes = 0;  // copies and memsets only
};

class KernelTrace {
 public:
  // Starts recording kernels, copies and memsets. False (and *error set) when
  // CUPTI refuses, e.g. because another profiler holds it.
  static bool Begin(std::string* error);
  // Stops recording and returns what ran since Begin, ordered by start. The
  // caller synchronises the device first.
  static std::vector<TraceEvent> End();
};

// Writes the events as CSV (name, start and end in µs from the first start,
// duration µs, bytes) to `csv_path`, and prints a summary to `out`: the span,
// the time with nothing running, and per kernel family (the name up to its
// template arguments) the count and in-stream time, largest first.
void ReportTrace(const std::vector<TraceEvent>& events, const std::string& label, const std::string& csv_path,
                 FILE* out);

}  // namespace supra::bench

#endif  // SUPRA_BENCH_KERNEL_TRACE_H_

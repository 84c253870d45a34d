#include "kernel_trace.h"

#include <cupti.h>
#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <utility>

namespace supra::bench {
namespace {

constexpr size_t kBufferBytes = size_t{8} << 20;
constexpr size_t kBufferAlign = 8;

std::mutex& Mutex() {
  static std::mutex mutex;
  return mutex;
}

std::vector<TraceEvent>& Collected() {
  static std::vector<TraceEvent> events;
  return events;
}

std::string Demangle(const char* name) {
  if (name == nullptr) return "?";
  int status = 0;
  char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || demangled == nullptr) return name;
  std::string out(demangled);
  std::free(demangled);
  return out;
}

const char* CopyName(uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
      return "copy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
      return "copy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD:
      return "copy DtoD";
    default:
      return "copy other";
  }
}

void CUPTIAPI BufferRequested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(kBufferAlign, kBufferBytes));
  *size = *buffer == nullptr ? 0 : kBufferBytes;
  *max_records = 0;
}

void CUPTIAPI BufferCompleted(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::vector<TraceEvent> events;
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    TraceEvent e;
    if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || record->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
      e = TraceEvent{Demangle(k->name), k->start, k->end, 0};
    } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
      e = TraceEvent{CopyName(m->copyKind), m->start, m->end, static_cast<int64_t>(m->bytes)};
    } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
      e = TraceEvent{"memset", m->start, m->end, static_cast<int64_t>(m->bytes)};
    } else {
      continue;
    }
    events.push_back(std::move(e));
  }
  std::free(buffer);
  const std::lock_guard<std::mutex> lock(Mutex());
  for (TraceEvent& e : events) Collected().push_back(std::move(e));
}

constexpr CUpti_ActivityKind kKinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                         CUPTI_ACTIVITY_KIND_MEMSET};

// "void supra::cuda::(anonymous namespace)::GemvKernel<float, 1, ...>(...)"
// → "supra::cuda::GemvKernel<float, 1, ...>": the template arguments are
// kept (they tell the GEMV configurations apart); the return type, the
// parameter list and anonymous namespaces are dropped.
std::string Family(const std::string& name) {
  std::string s = name;
  if (s.rfind("void ", 0) == 0) s = s.substr(5);
  for (const std::string anonymous = "(anonymous namespace)::";;) {
    const size_t at = s.find(anonymous);
    if (at == std::string::npos) break;
    s.erase(at, anonymous.size());
  }
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') ++depth;
    if (s[i] == '>') --depth;
    if (s[i] == '(' && depth == 0 && i > 0) return s.substr(0, i);
  }
  return s;
}

}  // namespace

bool KernelTrace::Begin(std::string* error) {
  {
    const std::lock_guard<std::mutex> lock(Mutex());
    Collected().clear();
  }
  if (cuptiActivityRegisterCallbacks(BufferRequested, BufferCompleted) != CUPTI_SUCCESS) {
    *error = "cuptiActivityRegisterCallbacks failed";
    return false;
  }
  for (const CUpti_ActivityKind kind : kKinds) {
    const CUptiResult result = cuptiActivityEnable(kind);
    if (result != CUPTI_SUCCESS) {
      const char* text = nullptr;
      cuptiGetResultString(result, &text);
      *error = std::string("cuptiActivityEnable: ") + (text != nullptr ? text : "unknown error");
      return false;
    }
  }
  return true;
}

std::vector<TraceEvent> KernelTrace::End() {
  cuptiActivityFlushAll(1);
  for (const CUpti_ActivityKind kind : kKinds) cuptiActivityDisable(kind);
  cuptiActivityFlushAll(1);
  std::vector<TraceEvent> events;
  {
    const std::lock_guard<std::mutex> lock(Mutex());
    events.swap(Collected());
  }
  std::sort(events.begin(), events.end(),
            [](const TraceEvent& a, const TraceEvent& b) { return a.start_ns < b.start_ns; });
  return events;
}

void ReportTrace(const std::vector<TraceEvent>& events, const std::string& label, const std::string& csv_path,
                 FILE* out) {
  if (events.empty()) {
    std::fprintf(out, "trace %s: no events recorded\n", label.c_str());
    return;
  }
  const uint64_t t0 = events.front().start_ns;
  uint64_t last_end = t0, idle = 0, max_end = t0;
  // us: each event's own duration (with programmatic launch a kernel starts
  // early and waits, so these overlap); added_us: how far it pushed the end
  // of the busy timeline (the part of the step only it accounts for).
  struct Totals {
    int count = 0;
    double us = 0;
    double added_us = 0;
  };
  std::map<std::string, Totals> families;
  std::ofstream csv(csv_path);
  csv << "name,start_us,end_us,duration_us,bytes\n";
  for (const TraceEvent& e : events) {
    if (e.start_ns > last_end) idle += e.start_ns - last_end;
    const uint64_t added = e.end_ns > std::max(e.start_ns, last_end) ? e.end_ns - std::max(e.start_ns, last_end) : 0;
    last_end = std::max(last_end, e.end_ns);
    max_end = std::max(max_end, e.end_ns);
    const double us = static_cast<double>(e.end_ns - e.start_ns) / 1e3;
    Totals& f = families[Family(e.name)];
    ++f.count;
    f.us += us;
    f.added_us += static_cast<double>(added) / 1e3;
    std::string name = e.name;
    std::replace(name.begin(), name.end(), ',', ';');
    csv << '"' << name << "\"," << (e.start_ns - t0) / 1e3 << ',' << (e.end_ns - t0) / 1e3 << ',' << us << ','
        << e.bytes << '\n';
  }
  std::vector<std::pair<std::string, Totals>> sorted(families.begin(), families.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second.added_us > b.second.added_us; });
  csv.flush();
  std::fprintf(out, "trace %s: %zu events over %.1f us on the GPU, %.1f us with nothing running (%s%s)\n",
               label.c_str(), events.size(), (max_end - t0) / 1e3, idle / 1e3, csv_path.c_str(),
               csv ? "" : ": NOT WRITTEN, cannot write there");
  for (const auto& [name, totals] : sorted) {
    std::fprintf(out, "  added %9.1f us  own %9.1f us %5d x  %s\n", totals.added_us, totals.us, totals.count,
                 name.substr(0, 200).c_str());
  }
}

}  // namespace supra::bench

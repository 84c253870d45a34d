// A fixed pool of worker threads for data-parallel loops.
//
// ParallelFor(n, fn) splits [0, n) into contiguous ranges and calls
// fn(begin, end) once per range; the calling thread works on ranges too and
// the call returns when every range is done. Ranges are claimed dynamically,
// so a worker that the OS pauses (machines here are shared) does not hold the
// others up. A ParallelFor called from inside a range runs inline (serially)
// instead of deadlocking. Calls from several threads at once are serialised.
// The hot path allocates nothing: the job is a function pointer and a context.
#ifndef SUPRA_ENGINE_UTIL_THREAD_POOL_H_
#define SUPRA_ENGINE_UTIL_THREAD_POOL_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace supra {

class ThreadPool {
 public:
  // `num_threads` counts the caller: 1 runs everything inline, 0 or less means
  // std::thread::hardware_concurrency().
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Threads that work on a ParallelFor, the caller included.
  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint contiguous ranges covering [0, n), each
  // holding at least `grain` items (except when n < grain), and returns when
  // all are done. Use a grain that makes one range worth a thread wake-up.
  template <typename Fn>
  void ParallelFor(int64_t n, int64_t grain, Fn&& fn) {
    if (n <= 0) return;
    const int64_t max_ranges = std::min<int64_t>(n / std::max<int64_t>(grain, 1), int64_t{4} * num_threads());
    if (max_ranges <= 1 || workers_.empty() || InsideRange()) {
      fn(int64_t{0}, n);
      return;
    }
    using FnType = std::remove_reference_t<Fn>;
    Run(
        n, max_ranges, [](void* context, int64_t begin, int64_t end) { (*static_cast<FnType*>(context))(begin, end); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }
  template <typename Fn>
  void ParallelFor(int64_t n, Fn&& fn) {
    ParallelFor(n, 1, std::forward<Fn>(fn));
  }

 private:
  using RangeFn = void (*)(void* context, int64_t begin, int64_t end);

  static bool InsideRange();
  void Run(int64_t n, int64_t num_ranges, RangeFn fn, void* context);
  void WorkerLoop();
  // Claims and runs ranges of the current job until none is left.
  void WorkOnJob(RangeFn fn, void* context, int64_t n, int64_t num_ranges);

  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // held for a whole Run: one job at a time

  std::mutex mu_;
  std::condition_variable work_cv_;     // workers wait here for a job (or stop)
  std::condition_variable done_cv_;     // Run waits here for the job to finish
  bool stop_ = false;                   // guarded by mu_
  uint64_t generation_ = 0;             // guarded by mu_; bumped per job
  bool job_open_ = false;               // guarded by mu_; workers may still join
  int active_workers_ = 0;              // guarded by mu_; workers inside the job
  RangeFn job_fn_ = nullptr;            // guarded by mu_
  void* job_context_ = nullptr;         // guarded by mu_
  int64_t job_n_ = 0;                   // guarded by mu_
  int64_t job_ranges_ = 0;              // guarded by mu_
  std::atomic<int64_t> next_range_{0};  // the next range to claim
};

}  // namespace supra

#endif  // SUPRA_ENGINE_UTIL_THREAD_POOL_H_

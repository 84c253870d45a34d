#include "engine/util/thread_pool.h"

namespace supra {
namespace {

// True on pool workers and on a caller while it runs ranges: a nested
// ParallelFor then runs inline rather than waiting on threads that are busy.
thread_local bool t_inside_range = false;

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  workers_.reserve(num_threads - 1);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

bool ThreadPool::InsideRange() { return t_inside_range; }

void ThreadPool::WorkOnJob(RangeFn fn, void* context, int64_t n, int64_t num_ranges) {
  for (;;) {
    const int64_t r = next_range_.fetch_add(1, std::memory_order_relaxed);
    if (r >= num_ranges) return;
    fn(context, r * n / num_ranges, (r + 1) * n / num_ranges);
  }
}

void ThreadPool::Run(int64_t n, int64_t num_ranges, RangeFn fn, void* context) {
  std::lock_guard<std::mutex> run_lock(run_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_fn_ = fn;
    job_context_ = context;
    job_n_ = n;
    job_ranges_ = num_ranges;
    next_range_.store(0, std::memory_order_relaxed);
    job_open_ = true;
    ++generation_;
  }
  work_cv_.notify_all();

  t_inside_range = true;
  WorkOnJob(fn, context, n, num_ranges);
  t_inside_range = false;

  // Close the job to late wakers, then wait for the workers that joined it:
  // their ranges must finish, and none may still read next_range_ when the
  // next job resets it.
  std::unique_lock<std::mutex> lock(mu_);
  job_open_ = false;
  done_cv_.wait(lock, [&] { return active_workers_ == 0; });
  // Every range was claimed (the caller's loop ran dry) and every claimer has
  // left, so all ranges are done.
}

void ThreadPool::WorkerLoop() {
  t_inside_range = true;
  uint64_t seen_generation = 0;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || (job_open_ && generation_ != seen_generation); });
    if (stop_) return;
    seen_generation = generation_;
    const RangeFn fn = job_fn_;
    void* const context = job_context_;
    const int64_t n = job_n_;
    const int64_t num_ranges = job_ranges_;
    ++active_workers_;
    lock.unlock();
    WorkOnJob(fn, context, n, num_ranges);
    lock.lock();
    if (--active_workers_ == 0 && !job_open_) done_cv_.notify_one();
  }
}

}  // namespace supra

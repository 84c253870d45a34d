#include "engine/util/thread_pool.h"

#include <atomic>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace supra {
namespace {

// Every index is visited exactly once, in contiguous ranges.
void ExpectCoversOnce(ThreadPool& pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(n);
  std::atomic<int64_t> ranges{0};
  pool.ParallelFor(n, grain, [&](int64_t begin, int64_t end) {
    EXPECT_LT(begin, end);
    ranges.fetch_add(1);
    for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " index " << i;
  EXPECT_LE(ranges.load(), std::max<int64_t>(1, n / grain));
}

TEST(ThreadPoolTest, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1000}) {
      for (int64_t grain : {1, 5, 100}) ExpectCoversOnce(pool, n, grain);
    }
  }
}

TEST(ThreadPoolTest, UsesSeveralThreads) {
  ThreadPool pool(4);
  std::atomic<int> inside{0}, most{0};
  pool.ParallelFor(16, [&](int64_t, int64_t) {
    const int now = inside.fetch_add(1) + 1;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    // Wait (bounded) for another thread to arrive.
    for (int spin = 0; spin < 1000000 && most.load() < 2; ++spin) std::this_thread::yield();
    inside.fetch_sub(1);
  });
  EXPECT_GE(most.load(), 2);
}

TEST(ThreadPoolTest, ManySmallJobsAndNesting) {
  ThreadPool pool(3);
  int64_t total = 0;
  for (int round = 0; round < 2000; ++round) {
    std::atomic<int64_t> sum{0};
    pool.ParallelFor(10, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        // A nested loop runs inline instead of waiting on busy workers.
        pool.ParallelFor(4, [&](int64_t b, int64_t e) { sum.fetch_add((e - b) * i); });
      }
    });
    total += sum.load();
  }
  EXPECT_EQ(total, 2000 * 4 * 45);
}

TEST(ThreadPoolTest, CallersOnSeveralThreadsAreSerialised) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        pool.ParallelFor(8, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
      }
    });
  }
  for (std::thread& c : callers) c.join();
  EXPECT_EQ(sum.load(), 3 * 200 * 8);
}

}  // namespace
}  // namespace supra

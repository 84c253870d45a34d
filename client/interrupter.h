// Cancels the RPC in flight when the user presses Ctrl-C. A signal handler
// cannot take a mutex, so main.cc's handler only writes to a pipe and a
// watcher thread calls Interrupt(); tests call Interrupt() directly.
#ifndef SUPRA_CLIENT_INTERRUPTER_H_
#define SUPRA_CLIENT_INTERRUPTER_H_

#include <atomic>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace supra::client {

// Thread-safe. Once interrupted it stays interrupted: every later call is
// cancelled as soon as it is attached.
class Interrupter {
 public:
  // Marks the process interrupted and cancels the attached call, if any.
  void Interrupt() ABSL_LOCKS_EXCLUDED(mu_);
  // Only marks the process interrupted (no cancellation): async-signal-safe,
  // for the SIGINT handler, so that code that returns early because of the
  // signal (a read of stdin failing with EINTR) sees it before the watcher
  // thread has called Interrupt().
  void MarkInterrupted() { interrupted_.store(true, std::memory_order_release); }
  bool interrupted() const { return interrupted_.load(std::memory_order_acquire); }

 private:
  friend class ScopedCancellation;
  void Attach(grpc::ClientContext* context) ABSL_LOCKS_EXCLUDED(mu_);
  void Detach() ABSL_LOCKS_EXCLUDED(mu_);

  std::atomic<bool> interrupted_{false};
  static_assert(std::atomic<bool>::is_always_lock_free, "MarkInterrupted must be async-signal-safe");
  std::mutex mu_;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// Makes `context` the call an interrupt cancels, for the scope's lifetime.
// `interrupter` may be null (nothing to cancel).
class ScopedCancellation {
 public:
  ScopedCancellation(Interrupter* interrupter, grpc::ClientContext* context);
  ~ScopedCancellation();
  ScopedCancellation(const ScopedCancellation&) = delete;
  ScopedCancellation& operator=(const ScopedCancellation&) = delete;

 private:
  Interrupter* interrupter_;
};

}  // namespace supra::client

#endif  // SUPRA_CLIENT_INTERRUPTER_H_

// The server's calls in flight and its draining flag, shared by every service
// that computes (relu.v1 ApplyReLU and the Open Inference Protocol's
// ModelInfer), so that a drain waits for all of their calls.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace relu::service {

// Thread-safe: every method may be called from any thread.
class CallTracker {
 public:
  using Clock = std::chrono::steady_clock;

  // From now on, draining() is true: services answer new calls UNAVAILABLE.
  void StartDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  // A call arrived (its messages were allocated). Each CallStarted() must be
  // matched by one CallEnded() once gRPC has sent its status and released
  // its messages.
  void CallStarted();
  void CallEnded();

  // Waits until no call is in flight or `deadline` passes. Returns whether
  // none is.
  bool WaitForNoCalls(Clock::time_point deadline);

  // Waits until no call has arrived for `quiet`, or `deadline` passes.
  void WaitForQuiet(Clock::duration quiet, Clock::time_point deadline);

 private:
  std::atomic<bool> draining_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  // Clock time of the last call's arrival.
  std::atomic<Clock::rep> last_call_{0};
};

}  // namespace relu::service

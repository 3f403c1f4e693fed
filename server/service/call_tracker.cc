#include "server/service/call_tracker.h"

#include <algorithm>
#include <thread>

namespace relu::service {

void CallTracker::CallStarted() {
  last_call_.store(Clock::now().time_since_epoch().count(),
                   std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_;
}

void CallTracker::CallEnded() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--calls_ == 0) cv_.notify_all();
}

bool CallTracker::WaitForNoCalls(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(lock, deadline, [this] { return calls_ == 0; });
}

void CallTracker::WaitForQuiet(Clock::duration quiet,
                               Clock::time_point deadline) {
  for (;;) {
    const Clock::time_point quiet_from =
        Clock::time_point(Clock::duration(last_call_.load())) + quiet;
    const Clock::time_point until = std::min(quiet_from, deadline);
    if (Clock::now() >= until) return;
    std::this_thread::sleep_until(until);
  }
}

}  // namespace relu::service

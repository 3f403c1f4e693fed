// A Clock for tests: time stands still until the test calls Advance(), and
// threads waiting in WaitUntil() sleep until then, however long that takes in
// real time. Tests of deadlines and batch delays use it instead of sleeping.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "server/batching/batch_scheduler.h"

namespace relu::batching::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_micros = 1000000);

  int64_t NowMicros() override;

  // Sleeps on `cv` (releasing `lock`) until it is notified, including by
  // Advance(); returns at once when NowMicros() >= deadline_micros. The lock
  // is briefly released and re-taken on the way out, as a wait may do.
  void WaitUntil(std::condition_variable& cv,
                 std::unique_lock<std::mutex>& lock,
                 int64_t deadline_micros) override;

  // Moves time forward by `micros` (>= 0) and wakes every thread in
  // WaitUntil(), taking each one's mutex to notify it so no wake-up is lost.
  // Must not be called with a waiter's mutex held.
  void Advance(int64_t micros);

  // Blocks until a thread waits in WaitUntil() with exactly `deadline_micros`
  // and began that wait after the last Advance(): that thread has seen the
  // current time and chose to sleep until `deadline_micros`.
  void BlockUntilWaiting(int64_t deadline_micros);
  // Whether BlockUntilWaiting(deadline_micros) would return at once.
  bool IsWaiting(int64_t deadline_micros);

  // Threads currently in WaitUntil().
  size_t waiters();

 private:
  bool IsWaitingLocked(int64_t deadline_micros);  // requires mu_

  struct Waiter {
    std::condition_variable* cv;
    std::mutex* mu;
    int64_t deadline_micros;
    uint64_t epoch;  // advances_ when the wait began
  };

  std::atomic<int64_t> now_micros_;
  std::mutex mu_;
  std::condition_variable changed_;  // waiters_ or advancing_ changed
  std::vector<Waiter*> waiters_;     // guarded by mu_
  uint64_t advances_ = 0;            // guarded by mu_
  int advancing_ = 0;  // Advance() calls notifying waiters; guarded by mu_
};

}  // namespace relu::batching::testing

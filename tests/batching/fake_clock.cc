#include "tests/batching/fake_clock.h"

#include <algorithm>

namespace relu::batching::testing {

FakeClock::FakeClock(int64_t start_micros) : now_micros_(start_micros) {}

int64_t FakeClock::NowMicros() { return now_micros_.load(); }

void FakeClock::WaitUntil(std::condition_variable& cv,
                          std::unique_lock<std::mutex>& lock,
                          int64_t deadline_micros) {
  Waiter waiter{&cv, lock.mutex(), deadline_micros, 0};
  {
    // Registered while the caller still holds its mutex: an Advance() that
    // misses this registration has already moved the time we read here, and
    // one that sees it must take the caller's mutex to notify, which it gets
    // only once cv.wait() below has released it.
    std::lock_guard<std::mutex> guard(mu_);
    if (now_micros_.load() >= deadline_micros) return;
    waiter.epoch = advances_;
    waiters_.push_back(&waiter);
    changed_.notify_all();
  }
  cv.wait(lock);
  // An Advance() may still be about to lock the caller's mutex through
  // `waiter`: leave only after every such call is done with it. The caller's
  // mutex is released meanwhile so those calls can finish.
  lock.unlock();
  {
    std::unique_lock<std::mutex> guard(mu_);
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &waiter));
    changed_.notify_all();
    changed_.wait(guard, [this] { return advancing_ == 0; });
  }
  lock.lock();
}

void FakeClock::Advance(int64_t micros) {
  std::vector<Waiter> to_wake;
  {
    std::lock_guard<std::mutex> guard(mu_);
    now_micros_.store(now_micros_.load() + micros);
    ++advances_;
    for (const Waiter* waiter : waiters_) to_wake.push_back(*waiter);
    ++advancing_;
  }
  for (const Waiter& waiter : to_wake) {
    std::lock_guard<std::mutex> guard(*waiter.mu);
    waiter.cv->notify_all();
  }
  std::lock_guard<std::mutex> guard(mu_);
  --advancing_;
  changed_.notify_all();
}

bool FakeClock::IsWaitingLocked(int64_t deadline_micros) {
  return std::any_of(waiters_.begin(), waiters_.end(), [&](const Waiter* w) {
    return w->deadline_micros == deadline_micros && w->epoch == advances_;
  });
}

void FakeClock::BlockUntilWaiting(int64_t deadline_micros) {
  std::unique_lock<std::mutex> guard(mu_);
  changed_.wait(guard, [&] { return IsWaitingLocked(deadline_micros); });
}

bool FakeClock::IsWaiting(int64_t deadline_micros) {
  std::lock_guard<std::mutex> guard(mu_);
  return IsWaitingLocked(deadline_micros);
}

size_t FakeClock::waiters() {
  std::lock_guard<std::mutex> guard(mu_);
  return waiters_.size();
}

}  // namespace relu::batching::testing

#include "server/service/call_tracker.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace relu::service {

CallTracker::CallTracker(size_t response_budget_bytes,
                         Clock::duration send_timeout)
    : responses_(response_budget_bytes), send_timeout_(send_timeout) {
  if (send_timeout_ > Clock::duration::zero()) {
    watcher_ = std::thread([this] { WatchSends(); });
    watcher_id_ = watcher_.get_id();
  }
}

CallTracker::~CallTracker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  watcher_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

void CallTracker::CallStarted(Call* call) {
  last_call_.store(Clock::now().time_since_epoch().count(),
                   std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_;
  call->next_ = head_;
  if (head_ != nullptr) head_->prev_ = call;
  head_ = call;
}

void CallTracker::CallEnded(Call* call) {
  std::unique_lock<std::mutex> lock(mu_);
  // The watcher may be cancelling this call: its context must live until
  // TryCancel() returns, unless the cancel ends the call on the watcher's own
  // thread (gRPC can run the call's completion inline).
  if (std::this_thread::get_id() != watcher_id_) {
    cv_.wait(lock, [call] { return !call->cancelling_; });
  } else if (call->cancelling_) {
    std::replace(cancelling_now_.begin(), cancelling_now_.end(), call,
                 static_cast<Call*>(nullptr));
  }
  if (call->prev_ != nullptr) call->prev_->next_ = call->next_;
  if (call->next_ != nullptr) call->next_->prev_ = call->prev_;
  if (head_ == call) head_ = call->next_;
  responses_.Release(call->reserved_bytes_);
  if (--calls_ == 0) cv_.notify_all();
}

absl::Status CallTracker::ReserveResponse(Call* call, size_t bytes,
                                          absl::string_view what) {
  if (!responses_.TryReserve(bytes)) {
    const size_t used = std::min(responses_.used(), responses_.capacity());
    return absl::ResourceExhaustedError(absl::StrCat(
        "the server's memory for responses is taken: ", what, " of ", bytes,
        " bytes does not fit in the ", responses_.capacity() - used,
        " bytes left of ", responses_.capacity(),
        " (3/8 of --memory-limit-bytes); retry later"));
  }
  call->reserved_bytes_ += bytes;
  return absl::OkStatus();
}

size_t CallTracker::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

size_t CallTracker::calls_with_responses() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t count = 0;
  for (const Call* call = head_; call != nullptr; call = call->next_) {
    count += call->reserved_bytes_ > 0;
  }
  return count;
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

void CallTracker::WatchSends() {
  const Clock::duration period = std::clamp<Clock::duration>(
      send_timeout_ / 4, std::chrono::milliseconds(50),
      std::chrono::seconds(1));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    watcher_cv_.wait_for(lock, period);
    if (stopping_) break;
    const Clock::rep late =
        (Clock::now() - send_timeout_).time_since_epoch().count();
    for (Call* call = head_; call != nullptr; call = call->next_) {
      const Clock::rep answered =
          call->answered_.load(std::memory_order_acquire);
      if (answered != 0 && answered < late && call->context_ != nullptr) {
        call->cancelling_ = true;
        call->answered_.store(0);  // never cancelled twice
        cancelling_now_.push_back(call);
      }
    }
    if (cancelling_now_.empty()) continue;
    // Cancel outside the lock: the cancel may end the call on this thread
    // (CallEnded() then clears its entry here). Calls ending on other threads
    // wait for `cancelling_` to clear.
    lock.unlock();
    for (size_t i = 0; i < cancelling_now_.size(); ++i) {
      if (Call* call = cancelling_now_[i]) call->context_->TryCancel();
    }
    lock.lock();
    sends_timed_out_.fetch_add(cancelling_now_.size());
    for (Call* call : cancelling_now_) {
      if (call != nullptr) call->cancelling_ = false;
    }
    cancelling_now_.clear();
    cv_.notify_all();
  }
}

}  // namespace relu::service

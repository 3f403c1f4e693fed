// The server's calls in flight and its draining flag, shared by every service
// that computes (relu.v1 ApplyReLU and the Open Inference Protocol's
// ModelInfer), so that a drain waits for all of their calls. It also holds
// what a call keeps until gRPC has delivered its response: the response bytes
// it reserved from the responses' memory budget, and, once answered, the
// time its delivery started, so that a response the client does not read is
// cancelled after the send timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"
#include "server/service/resource_limits.h"

namespace relu::service {

// Thread-safe: every method may be called from any thread.
class CallTracker {
 public:
  using Clock = std::chrono::steady_clock;

  // One call, from the allocation of its messages to their release. Owned by
  // the call's messages (TrackedAllocator); the tracker links it while the
  // call lives.
  class Call {
   public:
    // The call's context, once its handler runs.
    void set_context(grpc::CallbackServerContext* context) {
      context_ = context;
    }
    // The call has been answered: its response is being delivered.
    void MarkAnswered() {
      answered_.store(Clock::now().time_since_epoch().count(),
                      std::memory_order_release);
    }

   private:
    friend class CallTracker;
    Call* prev_ = nullptr;
    Call* next_ = nullptr;
    grpc::CallbackServerContext* context_ = nullptr;
    std::atomic<Clock::rep> answered_{0};  // 0 = not answered yet
    size_t reserved_bytes_ = 0;
    bool cancelling_ = false;  // guarded by the tracker's mu_
  };

  // `response_budget_bytes` bounds the response bytes reserved at once;
  // a response not delivered within `send_timeout` of its answer is
  // cancelled (checked about every send_timeout / 4, at least every second).
  CallTracker(size_t response_budget_bytes, Clock::duration send_timeout);
  // Unbounded budget, no send timeout (tests).
  CallTracker() : CallTracker(SIZE_MAX, Clock::duration::zero()) {}
  ~CallTracker();
  CallTracker(const CallTracker&) = delete;
  CallTracker& operator=(const CallTracker&) = delete;

  // From now on, draining() is true: services answer new calls UNAVAILABLE.
  void StartDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  // A call arrived (its messages were allocated). Each CallStarted() must be
  // matched by one CallEnded() once gRPC has sent its status and released
  // its messages; `call` must live until then.
  void CallStarted(Call* call);
  void CallEnded(Call* call);

  // Reserves `bytes` of the responses' budget for `call` until it ends.
  // RESOURCE_EXHAUSTED, with nothing reserved, when they do not fit.
  // `what` names them in the message ("a response").
  absl::Status ReserveResponse(Call* call, size_t bytes,
                               absl::string_view what = "a response");
  const MemoryBudget& response_budget() const { return responses_; }

  // Calls in flight now.
  size_t calls() const;
  // When the last call arrived (Clock ticks since its epoch; 0: none yet).
  Clock::rep last_call_arrival() const { return last_call_.load(); }
  // Calls in flight now that hold a response reserved (answered or being
  // computed, not yet delivered).
  size_t calls_with_responses() const;
  // Responses cancelled because the client did not take them within the send
  // timeout, since the start.
  size_t sends_timed_out() const { return sends_timed_out_.load(); }

  // Waits until no call is in flight or `deadline` passes. Returns whether
  // none is.
  bool WaitForNoCalls(Clock::time_point deadline);

  // Waits until no call has arrived for `quiet`, or `deadline` passes.
  void WaitForQuiet(Clock::duration quiet, Clock::time_point deadline);

 private:
  void WatchSends();

  std::atomic<bool> draining_{false};
  MemoryBudget responses_;
  const Clock::duration send_timeout_;
  mutable std::mutex mu_;
  // Calls ending (calls_ reaching 0, a cancel finished) wake the drain and
  // CallEnded(); only the destructor wakes the watcher, which otherwise
  // sleeps its period: a wake-up per call would cost a context switch each.
  std::condition_variable cv_;
  std::condition_variable watcher_cv_;
  size_t calls_ ABSL_GUARDED_BY(mu_) = 0;
  Call* head_ ABSL_GUARDED_BY(mu_) = nullptr;  // the calls in flight
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The calls the watcher is cancelling now; an entry is cleared when its
  // call ends during the cancel.
  std::vector<Call*> cancelling_now_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> sends_timed_out_{0};
  // Clock time of the last call's arrival.
  std::atomic<Clock::rep> last_call_{0};
  std::thread::id watcher_id_;
  std::thread watcher_;
};

}  // namespace relu::service

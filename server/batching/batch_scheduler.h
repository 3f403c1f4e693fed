// Dynamic batching for the ReLU service, shaped like TF Serving's
// BatchScheduler: requests in flight at the same time are coalesced into one
// kernel job (any dtypes, params and sizes; a segment per request; no padding,
// no staging copy). No gRPC in here: the service wraps each call in a
// BatchTask, and tests drive the scheduler with a stub kernel and a fake
// clock.
//
// Adaptive: when the kernel is idle, a task starts at once; while a batch
// runs, arrivals queue and form the next batch. A batch closes when it holds
// max_batch_requests tasks or max_batch_elements elements, when the queue is
// empty and max_batch_delay_micros has passed since its first task arrived
// (0 = never wait), whichever comes first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "server/kernel/relu_kernel.h"

namespace relu::batching {

// Time source, injected so tests control deadlines and batch delays.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMicros() = 0;
  // The process's monotonic clock (std::chrono::steady_clock).
  static Clock* Real();
};

// One request. The scheduler owns it from a successful Schedule() until it
// calls Done(); segment.in/out point into buffers the task itself keeps alive.
class BatchTask {
 public:
  virtual ~BatchTask() = default;

  kernel::Segment segment;
  size_t bytes = 0;                       // counted against max_queue_bytes
  int64_t deadline_micros = INT64_MAX;    // in Clock time; INT64_MAX = none
  int64_t enqueue_micros = 0;             // set by Schedule()

  // Polled before compute: a cancelled task is dropped with CANCELLED.
  virtual bool IsCancelled() const { return false; }
  // Called exactly once, on the scheduler's thread, without its lock held:
  // OK after the output is written, DEADLINE_EXCEEDED / CANCELLED when dropped
  // before compute, UNAVAILABLE when cut by a drain timeout. The task may
  // delete itself (the scheduler releases ownership before calling).
  virtual void Done(absl::Status status) = 0;
};

// Why a batch stopped growing (label of relu_batch_close_total).
enum class CloseReason { kIdle, kMaxRequests, kMaxElements, kDelay };
// Why a task was refused or dropped (label of relu_rejected_total).
enum class RejectReason { kQueueFull, kDeadline, kCancelled, kDraining };

const char* CloseReasonName(CloseReason reason);   // "idle", "max_requests", ...
const char* RejectReasonName(RejectReason reason); // "queue_full", ...

// Hooks for metrics. Called on the scheduler's thread (OnRejected also on the
// Schedule() caller's thread); implementations must be cheap and thread-safe.
class BatchObserver {
 public:
  virtual ~BatchObserver() = default;
  virtual void OnQueueChanged(size_t /*requests*/, size_t /*bytes*/) {}
  virtual void OnRejected(RejectReason /*reason*/) {}
  virtual void OnDequeued(int64_t /*queue_micros*/) {}
  virtual void OnBatch(size_t /*requests*/, size_t /*elements*/,
                       CloseReason /*reason*/, int64_t /*kernel_micros*/) {}
};

struct BatchSchedulerOptions {
  size_t max_batch_requests = 64;
  size_t max_batch_elements = 16777216;
  int64_t max_batch_delay_micros = 0;
  size_t max_queue_requests = 1024;
  size_t max_queue_bytes = size_t{1} << 30;
};

class BatchScheduler {
 public:
  // Runs one batch; returns when every segment is written.
  using KernelFn = std::function<void(const kernel::Segment*, size_t)>;

  // `clock` and `observer` (nullable) must outlive the scheduler. Starts the
  // scheduler thread.
  BatchScheduler(const BatchSchedulerOptions& options, KernelFn kernel,
                 Clock* clock = Clock::Real(), BatchObserver* observer = nullptr);
  // Drains with no time limit.
  ~BatchScheduler();

  // Queues `task`. On OK the scheduler has taken it (task is null afterwards).
  // Otherwise the caller keeps it: RESOURCE_EXHAUSTED naming the limit when the
  // queue is full, UNAVAILABLE once draining. Thread-safe.
  absl::Status Schedule(std::unique_ptr<BatchTask>& task);

  // Refuses new tasks from now on, answers every queued and running one, and
  // stops the thread. Returns the number of tasks cut with UNAVAILABLE because
  // `timeout_micros` (of Clock time) passed first; 0 after a complete drain.
  size_t Drain(int64_t timeout_micros = INT64_MAX);

  size_t queued_requests() const;
  size_t queued_bytes() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace relu::batching

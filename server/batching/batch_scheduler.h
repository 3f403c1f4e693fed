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
//
// With run_inline_when_idle (and no batch delay), a task that finds the
// kernel idle and the queue empty does not go through the scheduler thread at
// all: Schedule() runs it, as a batch of one, on its caller's thread and
// answers it before returning. That saves the thread hand-off (a wake-up and
// two context switches) that dominates the cost of a small request at low
// concurrency; under load, arrivals queue and batch as before.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "server/kernel/types.h"

namespace relu::batching {

// Time source, injected so tests control deadlines and batch delays.
//
// Waiting goes through the clock too: the scheduler never sleeps on its own,
// it calls WaitUntil() with its condition variable, so a fake clock can keep
// it asleep until the test advances time (and then wake it). Implementations
// must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds on this clock's monotonic time line.
  virtual int64_t NowMicros() = 0;

  // Blocks the calling thread, which holds `lock` (a lock on the mutex that
  // guards the caller's condition), until `cv` is notified or NowMicros()
  // reaches `deadline_micros` (INT64_MAX = no limit). Like
  // std::condition_variable::wait, `lock` is released while blocked and held
  // again on return; the call may return early (spurious wake-up), so callers
  // re-check their condition and the time in a loop. Returns at once when
  // NowMicros() >= deadline_micros. The default waits on
  // std::chrono::steady_clock for the remaining clock time.
  virtual void WaitUntil(std::condition_variable& cv,
                         std::unique_lock<std::mutex>& lock,
                         int64_t deadline_micros);

  // The process's monotonic clock (std::chrono::steady_clock). Never null;
  // lives for the whole process.
  static Clock* Real();
};

// One request. The scheduler owns it from a successful Schedule() on, calls
// Done() once and then destroys it; segment.in/out point into buffers the
// task itself keeps alive until it is destroyed. A task run inline (see
// BatchSchedulerOptions::run_inline_when_idle) is answered and destroyed
// before Schedule() returns OK.
class BatchTask {
 public:
  virtual ~BatchTask() = default;

  // The task's elements: `segment`, or, when `pieces` is not empty, the
  // pieces in order (one tensor split across buffers, such as the slices
  // gRPC received it in); segment.n is then their total, counted against
  // max_batch_elements, and segment.in/out are unused.
  kernel::Segment segment;
  std::vector<kernel::Segment> pieces;
  size_t bytes = 0;                     // counted against max_queue_bytes
  int64_t deadline_micros = INT64_MAX;  // in Clock time; INT64_MAX = none
  int64_t enqueue_micros = 0;           // set by Schedule()
  // Set by the scheduler before Done(), for the task's own records (a
  // request log): Clock time from Schedule() until the task's batch was
  // formed (0 when run inline or never queued), the Clock time of its batch's
  // kernel call, and how many tasks that batch held (0 when the task never
  // reached the kernel).
  int64_t queue_micros = 0;
  int64_t kernel_micros = 0;
  size_t batch_requests = 0;

  // Polled with the scheduler's lock held when the task's batch is formed
  // (on the scheduler's thread), or when Schedule() is about to run it inline
  // (on the caller's thread): must be cheap, must not call into the
  // scheduler, and other threads may flip it meanwhile (make it atomic). A
  // cancelled task is dropped with CANCELLED. A task whose deadline_micros <=
  // NowMicros() at that moment is dropped with DEADLINE_EXCEEDED. Dropped
  // tasks never reach the kernel.
  virtual bool IsCancelled() const { return false; }
  // Called exactly once per accepted task, without the scheduler's lock held:
  // OK after the output is written, DEADLINE_EXCEEDED / CANCELLED when dropped
  // before compute, UNAVAILABLE when cut by a drain timeout. Usually on the
  // scheduler's thread; for a task run inline, on the thread that called
  // Schedule(), before Schedule() returns OK (so code after a successful
  // Schedule() must not assume the task is still pending). The scheduler
  // destroys the task right after Done() returns, so Done() must not delete
  // it (it may hand its results elsewhere, e.g. finish a gRPC reactor).
  // Done() may call Schedule() but not Drain(). A Schedule() made inside the
  // Done() of a task that ran inline never runs inline itself (it queues, and
  // the scheduler thread runs it), so Done() -> Schedule() chains do not
  // recurse on one stack.
  virtual void Done(absl::Status status) = 0;
};

// Why a batch stopped growing (label of relu_batch_close_total).
enum class CloseReason { kIdle, kMaxRequests, kMaxElements, kDelay };
// Why a task was refused or dropped (label of relu_rejected_total).
enum class RejectReason { kQueueFull, kDeadline, kCancelled, kDraining };

const char* CloseReasonName(CloseReason reason);  // "idle", "max_requests", ...
const char* RejectReasonName(RejectReason reason);  // "queue_full", ...

// Hooks for metrics. Called on the scheduler's thread, and on the Schedule()
// caller's thread for OnQueueChanged, for OnRejected, and for every hook of a
// task run inline; implementations must be cheap and thread-safe, and must not
// call back into the scheduler.
class BatchObserver {
 public:
  virtual ~BatchObserver() = default;
  // The queue (accepted tasks not yet in a running batch, including those a
  // batch is waiting for under max_batch_delay_micros) now holds `requests`
  // tasks of `bytes` bytes. Called with the scheduler's lock held after every
  // change, so calls arrive in order and the last one is current. A task run
  // inline never enters the queue and causes no call.
  virtual void OnQueueChanged(size_t /*requests*/, size_t /*bytes*/) {}
  // Schedule() refused a task (kQueueFull, kDraining; caller's thread), or an
  // accepted task was dropped: kDeadline, kCancelled at batch formation (or
  // when Schedule() was about to run it inline), kDraining when cut by a
  // drain timeout (just before its Done()). Called without the scheduler's
  // lock.
  virtual void OnRejected(RejectReason /*reason*/) {}
  // Once per accepted task after it left the queue, whatever its fate
  // (batch, deadline, cancelled, drain cut): Clock time since Schedule() (0
  // for a task run inline). Called without the scheduler's lock.
  virtual void OnDequeued(int64_t /*queue_micros*/) {}
  // After each kernel call, before the batch's Done(OK) calls: tasks and
  // elements in it, why it closed, Clock time spent in the kernel. A task run
  // inline is a batch of one closed for kIdle.
  virtual void OnBatch(size_t /*requests*/, size_t /*elements*/,
                       CloseReason /*reason*/, int64_t /*kernel_micros*/) {}
};

struct BatchSchedulerOptions {
  size_t max_batch_requests = 64;            // >= 1
  size_t max_batch_elements = 16777216;      // >= 1; a bigger task runs alone
  int64_t max_batch_delay_micros = 0;        // >= 0
  size_t max_queue_requests = 1024;          // >= 1
  size_t max_queue_bytes = size_t{1} << 30;  // >= 1
  // When true and max_batch_delay_micros is 0, Schedule() runs a task on its
  // caller's thread if it finds the scheduler idle: not draining, the queue
  // empty, no batch running on the scheduler thread (kernel or Done() calls),
  // no other inline run in the kernel. The queue limits are checked first as
  // for any task (so a task over max_queue_bytes is refused even then), but an
  // inline task is never counted in the queue. A delay above 0 means batches
  // should wait to grow, so it turns this off.
  bool run_inline_when_idle = false;
  // Tasks of at most this many elements run on their caller's thread at
  // once, whatever else runs (a batch, other inline runs): their kernel work
  // costs less than handing them to the scheduler thread. Before the queue
  // limits (they never queue, so a full queue does not refuse them), after
  // the drain check; cancelled and expired ones are answered without the
  // kernel, as at batch formation. 0 = off. The KernelFn must then be safe
  // to call concurrently.
  size_t inline_max_elements = 0;
};

// OK, or INVALID_ARGUMENT naming the first bad option by its flag, e.g.
// "--max-batch-requests must be at least 1, got 0". For start-up checks; the
// scheduler itself raises zero limits to 1 and a negative delay to 0.
absl::Status ValidateOptions(const BatchSchedulerOptions& options);

// One scheduler thread forms batches and runs the kernel on them, one batch at
// a time. Its loop: wait until the queue is non-empty; drop (and answer) the
// queue's expired and cancelled tasks as it takes tasks from the front in
// arrival order until the next one would pass max_batch_requests or
// max_batch_elements (the batch closes: kMaxRequests / kMaxElements); if the
// whole queue fits, close at once when max_batch_delay_micros is 0 or the
// scheduler is draining (kIdle), when the delay has passed since the oldest
// queued task's Schedule() (kDelay), else Clock::WaitUntil() that moment or
// the next arrival and look again. Then, outside the lock: answer the dropped
// tasks, run the kernel on the batch's segments, report OnBatch, call Done(OK)
// on each task in arrival order and destroy it.
//
// With run_inline_when_idle, Schedule() may instead run a task as a batch of
// one on its caller's thread (see BatchSchedulerOptions). Only one kernel
// call is ever in progress: while an inline run is in the kernel, arrivals
// queue and the scheduler thread waits for it to end before it forms their
// batch; while a scheduler-thread batch runs, kernel and Done() calls, every
// Schedule() queues (so under load tasks keep forming batches). An inline run
// frees the kernel before its task's Done(), so tasks that queued behind it
// start their batch while that Done() runs.
class BatchScheduler {
 public:
  // Runs one batch; returns when every segment is written. Called on the
  // scheduler's thread, or with run_inline_when_idle on a Schedule() caller's
  // thread (a batch of one); never concurrently with itself, except for the
  // small tasks of inline_max_elements (then it must be safe to call from
  // several threads at once); must not throw.
  // The segments (in arrival order) are those of the tasks (each task's
  // `segment`, or its `pieces`), untouched: no tensor data is copied.
  using KernelFn = std::function<void(const kernel::Segment*, size_t)>;

  // `clock` and `observer` (nullable) must outlive the scheduler. Starts the
  // scheduler thread.
  BatchScheduler(const BatchSchedulerOptions& options, KernelFn kernel,
                 Clock* clock = Clock::Real(),
                 BatchObserver* observer = nullptr);
  // Drains with no time limit.
  ~BatchScheduler();
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // Queues `task` (sets its enqueue_micros), or with run_inline_when_idle and
  // an idle scheduler runs it here: the kernel, the observer's hooks and the
  // task's Done() (OK, or CANCELLED / DEADLINE_EXCEEDED if it is already
  // cancelled or expired) all happen on this thread before Schedule()
  // returns OK. On OK the scheduler has taken it (task is null afterwards).
  // Otherwise the caller keeps it:
  // RESOURCE_EXHAUSTED naming the limit when the queue is full ("queue full:
  // 1024 requests queued, limit --max-queue-requests=1024", "queue full: N
  // bytes queued + M requested, limit --max-queue-bytes=L"), UNAVAILABLE
  // ("server is draining") once Drain() has begun, INVALID_ARGUMENT for a null
  // task. Thread-safe.
  absl::Status Schedule(std::unique_ptr<BatchTask>& task);

  // Refuses new tasks from now on, answers every queued and running one
  // (waiting for inline runs in progress to end, Done() and destruction
  // included), and stops the thread. Returns the number of tasks cut with
  // UNAVAILABLE ("server shut down before the call ran") because
  // `timeout_micros` (of Clock time, counted from this call) passed first; 0
  // after a complete drain. The running batch (or inline run) always finishes:
  // the deadline is checked whenever a batch is formed, and everything still
  // queued then is cut. Thread-safe: every call tightens the deadline to its
  // own if sooner and returns once the thread has stopped; the one call that
  // joined the thread returns the count, the others 0. Must not be called from
  // Done() or the kernel.
  size_t Drain(int64_t timeout_micros = INT64_MAX);

  // Whether Drain() has begun (Schedule() refuses from then on).
  bool draining() const;
  // The clock that deadline_micros and enqueue_micros are read on.
  Clock* clock() const;
  size_t queued_requests() const;
  size_t queued_bytes() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace relu::batching

#include "server/batching/batch_scheduler.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace relu::batching {
namespace {

class SteadyClock final : public Clock {
 public:
  int64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// a + b without overflow past INT64_MAX (b >= 0).
int64_t SaturatingAdd(int64_t a, int64_t b) {
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

// True on a thread while it runs the Done() of a task it ran inline (any
// scheduler's): a Schedule() made there queues instead of running inline, so
// Done() -> Schedule() chains cannot recurse without bound.
thread_local bool in_inline_done = false;

// The kernel's work for `task`: its pieces, or its one segment.
absl::Span<const kernel::Segment> Work(const BatchTask& task) {
  if (task.pieces.empty()) return {&task.segment, 1};
  return task.pieces;
}

}  // namespace

void Clock::WaitUntil(std::condition_variable& cv,
                      std::unique_lock<std::mutex>& lock,
                      int64_t deadline_micros) {
  if (deadline_micros == INT64_MAX) {
    cv.wait(lock);
    return;
  }
  const int64_t remaining = deadline_micros - NowMicros();
  if (remaining <= 0) return;
  // Capped so that steady_clock::now() + remaining cannot overflow; a longer
  // wait simply returns early, which callers allow for.
  constexpr int64_t kMaxWaitMicros = int64_t{3600} * 1000 * 1000;
  cv.wait_for(lock,
              std::chrono::microseconds(std::min(remaining, kMaxWaitMicros)));
}

Clock* Clock::Real() {
  static SteadyClock* const clock = new SteadyClock;
  return clock;
}

const char* CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kIdle:
      return "idle";
    case CloseReason::kMaxRequests:
      return "max_requests";
    case CloseReason::kMaxElements:
      return "max_elements";
    case CloseReason::kDelay:
      return "delay";
  }
  return "unknown";
}

const char* RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kQueueFull:
      return "queue_full";
    case RejectReason::kDeadline:
      return "deadline";
    case RejectReason::kCancelled:
      return "cancelled";
    case RejectReason::kDraining:
      return "draining";
  }
  return "unknown";
}

absl::Status ValidateOptions(const BatchSchedulerOptions& options) {
  auto at_least_one = [](const char* flag, size_t value) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " must be at least 1, got ", value));
  };
  if (options.max_batch_requests < 1) {
    return at_least_one("--max-batch-requests", options.max_batch_requests);
  }
  if (options.max_batch_elements < 1) {
    return at_least_one("--max-batch-elements", options.max_batch_elements);
  }
  if (options.max_batch_delay_micros < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-batch-delay-us must not be negative, got ",
                     options.max_batch_delay_micros));
  }
  if (options.max_queue_requests < 1) {
    return at_least_one("--max-queue-requests", options.max_queue_requests);
  }
  if (options.max_queue_bytes < 1) {
    return at_least_one("--max-queue-bytes", options.max_queue_bytes);
  }
  return absl::OkStatus();
}

struct BatchScheduler::State {
  State(const BatchSchedulerOptions& opts, KernelFn fn, Clock* clk,
        BatchObserver* obs)
      : options(opts), kernel(std::move(fn)), clock(clk), observer(obs) {
    options.max_batch_requests =
        std::max<size_t>(options.max_batch_requests, 1);
    options.max_batch_elements =
        std::max<size_t>(options.max_batch_elements, 1);
    options.max_batch_delay_micros =
        std::max<int64_t>(options.max_batch_delay_micros, 0);
    options.max_queue_requests =
        std::max<size_t>(options.max_queue_requests, 1);
    options.max_queue_bytes = std::max<size_t>(options.max_queue_bytes, 1);
  }

  // The scheduler thread's loop; returns once draining, the queue is empty
  // and no inline run is in progress.
  void Run();

  // OK, or why `task`, about to run at `now`, is answered without the kernel
  // (cancelled, or past its deadline; `*reason` set): at batch formation and
  // before an inline run.
  static absl::Status Expired(BatchTask& task, int64_t now,
                              RejectReason* reason) {
    if (task.IsCancelled()) {
      *reason = RejectReason::kCancelled;
      return absl::CancelledError("call cancelled while queued");
    }
    if (task.deadline_micros <= now) {
      *reason = RejectReason::kDeadline;
      return absl::DeadlineExceededError("deadline exceeded while queued");
    }
    return absl::OkStatus();
  }

  // Runs `task`, accepted at `now_micros`, on the caller's thread: the kernel
  // if `dropped` is OK, else only its answer. Entered without `mu`; the
  // caller has counted it in inline_runs and, if it is to compute and
  // `holds_kernel`, set kernel_busy (a small task runs beside the kernel's
  // other users and leaves kernel_busy alone).
  void RunInline(std::unique_ptr<BatchTask> task, int64_t now_micros,
                 RejectReason reason, absl::Status dropped, bool holds_kernel);

  // A task dropped before compute, with its answer.
  struct Dropped {
    std::unique_ptr<BatchTask> task;
    RejectReason reason;
    absl::Status status;
  };

  // Reports and answers `dropped`, destroys the tasks and clears it. Without
  // `mu`.
  void AnswerDropped(std::vector<Dropped>& dropped, int64_t now_micros);

  // Requires `mu`, so that the calls arrive in order.
  void NoteQueueChanged() {
    if (observer != nullptr)
      observer->OnQueueChanged(queue.size(), queued_bytes);
  }
  void Reject(RejectReason reason) {
    if (observer != nullptr) observer->OnRejected(reason);
  }

  BatchSchedulerOptions options;
  const KernelFn kernel;
  Clock* const clock;
  BatchObserver* const observer;

  mutable std::mutex mu;
  std::condition_variable cv;  // queue grew, or draining began
  std::deque<std::unique_ptr<BatchTask>> queue ABSL_GUARDED_BY(mu);
  size_t queued_bytes ABSL_GUARDED_BY(mu) = 0;
  bool draining ABSL_GUARDED_BY(mu) = false;
  int64_t drain_deadline_micros ABSL_GUARDED_BY(mu) = INT64_MAX;
  size_t cut_tasks ABSL_GUARDED_BY(mu) = 0;
  // Whether the kernel is taken: by the scheduler thread from closing a batch
  // until its tasks' Done() calls returned, or by an inline run until its
  // kernel call returned. Set by whoever takes it.
  bool kernel_busy ABSL_GUARDED_BY(mu) = false;
  // Tasks Schedule() is running inline and has not yet destroyed.
  size_t inline_runs ABSL_GUARDED_BY(mu) = 0;

  std::mutex join_mu;  // serializes joining `thread` in Drain()
  // Joinable until the first Drain() joins it.
  std::thread thread ABSL_GUARDED_BY(join_mu);
};

void BatchScheduler::State::AnswerDropped(std::vector<Dropped>& dropped,
                                          int64_t now_micros) {
  for (Dropped& d : dropped) {
    d.task->queue_micros = now_micros - d.task->enqueue_micros;
    if (observer != nullptr) {
      observer->OnDequeued(now_micros - d.task->enqueue_micros);
      observer->OnRejected(d.reason);
    }
    d.task->Done(std::move(d.status));
    d.task.reset();
  }
  dropped.clear();
}

void BatchScheduler::State::Run() {
  std::vector<std::unique_ptr<BatchTask>> batch;
  std::vector<kernel::Segment> segments;
  std::vector<Dropped> dropped;
  int64_t now = 0;
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    // Sleep until there is a batch to form and the kernel is free, or until
    // the drain can end (nothing queued, no inline run left).
    while (queue.empty() ? !draining || inline_runs > 0 : kernel_busy) {
      clock->WaitUntil(cv, lock, INT64_MAX);
    }
    now = clock->NowMicros();

    if (draining && now >= drain_deadline_micros && !queue.empty()) {
      // The drain's time is up: cut everything still queued.
      for (std::unique_ptr<BatchTask>& task : queue) {
        queued_bytes -= task->bytes;
        dropped.push_back(
            {std::move(task), RejectReason::kDraining,
             absl::UnavailableError("server shut down before the call ran")});
      }
      cut_tasks += queue.size();
      queue.clear();
      NoteQueueChanged();
    }
    // After a cut, an inline run may still be answering its task: then the
    // cut tasks are answered below and the loop waits for it at the top.
    if (queue.empty() && draining && inline_runs == 0) break;

    // Take tasks from the front while they fit, dropping dead ones.
    size_t elements = 0;
    bool full = false;
    CloseReason reason = CloseReason::kIdle;
    bool queue_changed = false;
    while (!queue.empty()) {
      BatchTask& task = *queue.front();
      RejectReason why = RejectReason::kCancelled;
      if (absl::Status expired = Expired(task, now, &why); !expired.ok()) {
        queued_bytes -= task.bytes;
        dropped.push_back({std::move(queue.front()), why, std::move(expired)});
        queue.pop_front();
        queue_changed = true;
        continue;
      }
      if (batch.size() == options.max_batch_requests) {
        full = true;
        reason = CloseReason::kMaxRequests;
        break;
      }
      if (!batch.empty() &&
          task.segment.n > options.max_batch_elements - elements) {
        full = true;
        reason = CloseReason::kMaxElements;
        break;
      }
      elements += task.segment.n;
      batch.push_back(std::move(queue.front()));
      queue.pop_front();
      if (elements >= options.max_batch_elements) {
        full = true;
        reason = CloseReason::kMaxElements;
        break;
      }
    }
    if (!full && batch.size() == options.max_batch_requests) {
      full = true;
      reason = CloseReason::kMaxRequests;
    }

    bool close = full;
    if (!close && !batch.empty()) {
      const int64_t delay = options.max_batch_delay_micros;
      if (delay == 0 || draining) {
        close = true;
        reason = CloseReason::kIdle;
      } else if (now >= SaturatingAdd(batch.front()->enqueue_micros, delay)) {
        close = true;
        reason = CloseReason::kDelay;
      }
    }

    if (!close) {
      // Not ready: the taken tasks go back to the front, in order.
      const int64_t deadline =
          batch.empty() ? INT64_MAX
                        : SaturatingAdd(batch.front()->enqueue_micros,
                                        options.max_batch_delay_micros);
      while (!batch.empty()) {
        queue.push_front(std::move(batch.back()));
        batch.pop_back();
      }
      if (queue_changed) NoteQueueChanged();
      if (!dropped.empty()) {
        // Answer the dropped tasks first, then look again.
        lock.unlock();
        AnswerDropped(dropped, now);
        lock.lock();
      } else if (!queue.empty()) {
        clock->WaitUntil(cv, lock, deadline);
      }
      continue;
    }

    for (const std::unique_ptr<BatchTask>& task : batch) {
      queued_bytes -= task->bytes;
    }
    NoteQueueChanged();
    kernel_busy = true;  // the batch is never empty here
    lock.unlock();

    AnswerDropped(dropped, now);
    segments.clear();
    for (const std::unique_ptr<BatchTask>& task : batch) {
      task->queue_micros = now - task->enqueue_micros;
      if (observer != nullptr) {
        observer->OnDequeued(task->queue_micros);
      }
      const absl::Span<const kernel::Segment> work = Work(*task);
      segments.insert(segments.end(), work.begin(), work.end());
    }
    const int64_t start = clock->NowMicros();
    kernel(segments.data(), segments.size());
    const int64_t kernel_micros = clock->NowMicros() - start;
    if (observer != nullptr) {
      observer->OnBatch(batch.size(), elements, reason, kernel_micros);
    }
    for (std::unique_ptr<BatchTask>& task : batch) {
      task->kernel_micros = kernel_micros;
      task->batch_requests = batch.size();
      task->Done(absl::OkStatus());
      task.reset();
    }
    batch.clear();

    lock.lock();
    // Held through the Done() calls: under load, arrivals queue for the next
    // batch instead of running one by one inline.
    kernel_busy = false;
  }
  lock.unlock();
  AnswerDropped(dropped, now);
}

void BatchScheduler::State::RunInline(std::unique_ptr<BatchTask> task,
                                      int64_t now_micros, RejectReason reason,
                                      absl::Status dropped, bool holds_kernel) {
  if (observer != nullptr) observer->OnDequeued(0);
  if (!dropped.ok()) {
    if (observer != nullptr) observer->OnRejected(reason);
  } else {
    const absl::Span<const kernel::Segment> work = Work(*task);
    kernel(work.data(), work.size());
    const int64_t kernel_micros = clock->NowMicros() - now_micros;
    task->kernel_micros = kernel_micros;
    task->batch_requests = 1;
    if (observer != nullptr) {
      observer->OnBatch(1, task->segment.n, CloseReason::kIdle, kernel_micros);
    }
    if (holds_kernel) {
      // Free the kernel before Done(): tasks that queued behind this run can
      // start their batch meanwhile. The scheduler thread sleeps on the
      // kernel only when something is queued, so wake it only then.
      std::lock_guard<std::mutex> lock(mu);
      kernel_busy = false;
      if (!queue.empty()) cv.notify_one();
    }
  }
  const bool outer = in_inline_done;
  in_inline_done = true;
  task->Done(std::move(dropped));
  task.reset();
  in_inline_done = outer;
  // Notified under the lock: once the drain sees the count reach 0 it may
  // stop the thread and the scheduler may be destroyed, and this thread must
  // not touch `cv` after that.
  std::lock_guard<std::mutex> lock(mu);
  --inline_runs;
  if (inline_runs == 0 && draining) cv.notify_one();
}

BatchScheduler::BatchScheduler(const BatchSchedulerOptions& options,
                               KernelFn kernel, Clock* clock,
                               BatchObserver* observer)
    : state_(std::make_unique<State>(options, std::move(kernel), clock,
                                     observer)) {
  state_->thread = std::thread([state = state_.get()] { state->Run(); });
}

BatchScheduler::~BatchScheduler() { Drain(INT64_MAX); }

absl::Status BatchScheduler::Schedule(std::unique_ptr<BatchTask>& task) {
  if (task == nullptr) {
    return absl::InvalidArgumentError("Schedule() needs a task");
  }
  State& s = *state_;
  absl::Status refused;
  RejectReason reason = RejectReason::kQueueFull;
  bool run_inline = false;
  bool holds_kernel = false;  // the inline run has the kernel to itself
  absl::Status dropped;       // why an inline task will not reach the kernel
  int64_t now = 0;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    const bool small = s.options.inline_max_elements > 0 &&
                       task->segment.n <= s.options.inline_max_elements;
    if (s.draining) {
      reason = RejectReason::kDraining;
      refused = absl::UnavailableError("server is draining");
    } else if (small && !in_inline_done) {
      // Small: a batch of one, run below on this thread beside whatever
      // else runs.
      now = s.clock->NowMicros();
      task->enqueue_micros = now;
      dropped = s.Expired(*task, now, &reason);
      ++s.inline_runs;
      run_inline = true;
      holds_kernel = false;
    } else if (s.queue.size() >= s.options.max_queue_requests) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("queue full: ", s.queue.size(),
                       " requests queued, limit "
                       "--max-queue-requests=",
                       s.options.max_queue_requests));
    } else if (task->bytes > s.options.max_queue_bytes - s.queued_bytes) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "queue full: ", s.queued_bytes, " bytes queued + ", task->bytes,
          " requested, limit --max-queue-bytes=", s.options.max_queue_bytes));
    } else if (s.options.run_inline_when_idle &&
               s.options.max_batch_delay_micros == 0 && s.queue.empty() &&
               !s.kernel_busy && !in_inline_done) {
      // Idle: a batch of one, run below on this thread. The same checks as
      // at batch formation.
      now = s.clock->NowMicros();
      task->enqueue_micros = now;
      dropped = s.Expired(*task, now, &reason);
      if (dropped.ok()) s.kernel_busy = true;
      ++s.inline_runs;
      run_inline = true;
      holds_kernel = true;
    } else {
      task->enqueue_micros = s.clock->NowMicros();
      s.queued_bytes += task->bytes;
      s.queue.push_back(std::move(task));
      s.NoteQueueChanged();
      // Whoever holds the kernel looks at the queue when it lets go (an
      // inline run wakes the thread then), so a wake-up now would be wasted.
      wake = !s.kernel_busy;
    }
  }
  if (!refused.ok()) {
    s.Reject(reason);
    return refused;
  }
  if (run_inline) {
    s.RunInline(std::move(task), now, reason, std::move(dropped), holds_kernel);
  } else if (wake) {
    s.cv.notify_one();
  }
  return absl::OkStatus();
}

size_t BatchScheduler::Drain(int64_t timeout_micros) {
  State& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.draining = true;
    const int64_t deadline = SaturatingAdd(
        s.clock->NowMicros(), std::max<int64_t>(timeout_micros, 0));
    s.drain_deadline_micros = std::min(s.drain_deadline_micros, deadline);
  }
  s.cv.notify_one();
  std::lock_guard<std::mutex> join_lock(s.join_mu);
  if (!s.thread.joinable()) return 0;
  s.thread.join();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.cut_tasks;
}

bool BatchScheduler::draining() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->draining;
}

Clock* BatchScheduler::clock() const { return state_->clock; }

size_t BatchScheduler::queued_requests() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->queue.size();
}

size_t BatchScheduler::queued_bytes() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->queued_bytes;
}

}  // namespace relu::batching

// Helpers for the batcher's tests: a stub kernel the test can hold, tasks that
// report what happened to them, and an observer that records every hook.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "server/batching/batch_scheduler.h"
#include "server/kernel/relu_kernel.h"
#include "tests/batching/fake_clock.h"

namespace relu::batching::testing {

// The computation the stub kernel performs on one segment: for float32 and
// float64, y = x > t ? min(x, m) : s * (x - t); for float16 and bfloat16 the
// 16-bit patterns are mapped by y = x + 1 + int(t). Not the Keras layer: just
// a function of dtype, params and input, so a result that went to the wrong
// caller or was computed with another request's params shows.
void ReferenceCompute(const kernel::Segment& segment);

// A KernelFn for tests. Thread-safe.
class StubKernel {
 public:
  // If `clock` is set, each call advances it by `micros_per_call` just before
  // returning (so kernel time is visible to the observer).
  explicit StubKernel(FakeClock* clock = nullptr, int64_t micros_per_call = 0);

  BatchScheduler::KernelFn Fn();
  // Clock time each later call takes (needs a clock).
  void set_micros_per_call(int64_t micros);

  // Calls that begin from now on wait at their start until Release().
  void Hold();
  void Release();
  // Lets the calls that have begun so far go on; later ones are still held
  // (until Release()).
  void ReleaseBegun();
  // Blocks until `calls` calls have begun.
  void WaitForCalls(size_t calls);
  size_t calls_begun();
  // The segments of every call that ran, in order.
  std::vector<std::vector<kernel::Segment>> calls();
  // The thread each call ran on, in order.
  std::vector<std::thread::id> call_threads();
  // The most calls that were ever in progress at once (1 when the kernel was
  // never entered concurrently).
  size_t max_concurrent_calls();

 private:
  void Run(const kernel::Segment* segments, size_t count);

  FakeClock* const clock_;
  std::mutex mu_;
  int64_t micros_per_call_;
  std::condition_variable cv_;
  bool held_ = false;
  size_t released_ = 0;  // calls with a lower index are not held
  size_t begun_ = 0;
  size_t active_ = 0;
  size_t max_active_ = 0;
  std::vector<std::vector<kernel::Segment>> calls_;
  std::vector<std::thread::id> threads_;
};

// What happened to one TestTask; outlives it.
struct TaskRecord {
  std::atomic<bool> cancel{false};  // what IsCancelled() returns

  // Blocks until Done() was called.
  void WaitDone();
  bool done();
  int done_calls();
  absl::Status status();
  // True once the task was destroyed; `done_calls_at_destruction` then tells
  // how often Done() had run by then.
  bool destroyed();
  int done_calls_at_destruction();
  std::vector<uint8_t> output();
  // The thread that called Done() (the last time).
  std::thread::id done_thread();

  const void* in = nullptr;  // the task's buffers, for comparing to segments
  const void* out = nullptr;
  std::vector<uint8_t> input;     // copy of the input
  std::vector<uint8_t> expected;  // ReferenceCompute of the input

  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  absl::Status last_status;
  std::thread::id thread;
  std::vector<uint8_t> result;
  bool gone = false;
  int calls_at_destruction = -1;
};

struct TaskSpec {
  kernel::DType dtype = kernel::DType::kFloat32;
  kernel::Params params;
  size_t n = 4;
  size_t bytes = 0;  // counted against the queue; 0 = n * element size
  int64_t deadline_micros = INT64_MAX;
  uint32_t seed = 1;
};

// A task over its own input and output buffers, filled from spec.seed.
class TestTask final : public BatchTask {
 public:
  TestTask(const TaskSpec& spec, std::shared_ptr<TaskRecord> record);
  ~TestTask() override;

  bool IsCancelled() const override;
  void Done(absl::Status status) override;

 private:
  std::shared_ptr<TaskRecord> record_;
  std::vector<uint8_t> in_;
  std::vector<uint8_t> out_;
};

// Makes a task and the record that will tell its fate.
std::unique_ptr<BatchTask> MakeTask(const TaskSpec& spec,
                                    std::shared_ptr<TaskRecord>* record);

// Records every observer call. Thread-safe.
class RecordingObserver final : public BatchObserver {
 public:
  struct Batch {
    size_t requests;
    size_t elements;
    CloseReason reason;
    int64_t kernel_micros;
  };
  struct QueueState {
    size_t requests;
    size_t bytes;
    bool operator==(const QueueState& o) const {
      return requests == o.requests && bytes == o.bytes;
    }
  };

  void OnQueueChanged(size_t requests, size_t bytes) override;
  void OnRejected(RejectReason reason) override;
  void OnDequeued(int64_t queue_micros) override;
  void OnBatch(size_t requests, size_t elements, CloseReason reason,
               int64_t kernel_micros) override;

  std::vector<QueueState> queue_states();
  std::vector<RejectReason> rejections();
  size_t rejections(RejectReason reason);
  std::vector<int64_t> dequeued();
  std::vector<Batch> batches();

 private:
  std::mutex mu_;
  std::vector<QueueState> queue_states_;
  std::vector<RejectReason> rejections_;
  std::vector<int64_t> dequeued_;
  std::vector<Batch> batches_;
};

}  // namespace relu::batching::testing

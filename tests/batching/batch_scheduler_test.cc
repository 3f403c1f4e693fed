// The batcher's behaviour, driven by a fake clock and a stub kernel the test
// can hold: tasks scheduled while a held batch runs queue up, so every test
// knows exactly which tasks form which batch. No test sleeps or measures
// time. What does not depend on run_inline_when_idle is tested with it off
// and on (BatchSchedulerModeTest); the tests of what it alone does come last.
#include "server/batching/batch_scheduler.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "tests/batching/fake_clock.h"
#include "tests/batching/test_util.h"

namespace relu::batching {
namespace {

using kernel::DType;
using testing::FakeClock;
using testing::MakeTask;
using testing::RecordingObserver;
using testing::StubKernel;
using testing::TaskRecord;
using testing::TaskSpec;
using Record = std::shared_ptr<TaskRecord>;

class BatchSchedulerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    kernel_.Release();
    JoinBlocker();
    scheduler_.reset();
  }

  // Starts the scheduler; with inline_, run_inline_when_idle on.
  void Start(BatchSchedulerOptions options) {
    if (inline_) options.run_inline_when_idle = true;
    scheduler_ = std::make_unique<BatchScheduler>(options, kernel_.Fn(),
                                                  &clock_, &observer_);
  }
  void StartInline(BatchSchedulerOptions options = {}) {
    options.run_inline_when_idle = true;
    Start(options);
  }

  // Schedules a task that must be accepted.
  Record Submit(const TaskSpec& spec) {
    Record record;
    std::unique_ptr<BatchTask> task = MakeTask(spec, &record);
    const absl::Status status = scheduler_->Schedule(task);
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_EQ(task, nullptr);
    return record;
  }
  Record Submit(size_t n) {
    TaskSpec spec;
    spec.n = n;
    spec.seed = ++seed_;
    return Submit(spec);
  }

  // Runs a one-element task and holds the kernel on it: whatever is
  // scheduled next queues behind it until kernel_.Release(). Run inline, the
  // task blocks the thread that scheduled it: another thread, joined by
  // JoinBlocker().
  Record Block() {
    kernel_.Hold();
    const size_t calls = kernel_.calls_begun();
    Record record;
    if (inline_) {
      blocker_ = SubmitOnAnotherThread(&record);
    } else {
      record = Submit(1);
    }
    kernel_.WaitForCalls(calls + 1);
    return record;
  }
  // After kernel_.Release(), before the scheduler goes.
  void JoinBlocker() {
    if (blocker_.joinable()) blocker_.join();
  }

  // Waits for the task's answer and checks it came once, before the task
  // was destroyed, with `code`; OK answers carry the task's own result.
  void ExpectAnswered(const Record& record, absl::StatusCode code) {
    record->WaitDone();
    EXPECT_EQ(record->status().code(), code) << record->status();
    if (code == absl::StatusCode::kOk) {
      EXPECT_EQ(record->output(), record->expected);
    } else {
      EXPECT_EQ(record->output(),
                std::vector<uint8_t>(record->expected.size(), 0))
          << "a dropped task's output was written";
    }
  }

  // After the scheduler is gone: every task answered once, then destroyed.
  void ExpectFinished(const std::vector<Record>& records) {
    JoinBlocker();
    scheduler_.reset();
    for (const Record& record : records) {
      EXPECT_EQ(record->done_calls(), 1);
      EXPECT_TRUE(record->destroyed());
      EXPECT_EQ(record->done_calls_at_destruction(), 1);
    }
  }

  // Schedules a one-element task from a new thread (where, run inline, it may
  // block in a held kernel); `record` is set before this returns. Join the
  // thread before the scheduler goes.
  std::thread SubmitOnAnotherThread(Record* record) {
    TaskSpec spec;
    spec.n = 1;
    spec.seed = ++seed_;
    auto task =
        std::make_shared<std::unique_ptr<BatchTask>>(MakeTask(spec, record));
    return std::thread([this, task] {
      const absl::Status status = scheduler_->Schedule(*task);
      EXPECT_TRUE(status.ok()) << status;
      EXPECT_EQ(*task, nullptr);
    });
  }

  // Wakes the scheduler thread and waits until it went back to sleep with no
  // time limit, having looked at the scheduler's current state, and returns
  // true; or returns false as soon as `went_on()` is true (what a bug would
  // do instead of sleeping), rather than waiting forever.
  bool SchedulerThreadSleeps(const std::function<bool()>& went_on) {
    clock_.Advance(0);
    return SchedulerThreadSleepsAgain(went_on);
  }
  // The same after the test's own Advance().
  bool SchedulerThreadSleepsAgain(const std::function<bool()>& went_on) {
    while (!clock_.IsWaiting(INT64_MAX)) {
      if (went_on()) return false;
      std::this_thread::yield();
    }
    return true;
  }

  // Waits until the scheduler sleeps until `deadline` having seen the
  // current time (FakeClock::BlockUntilWaiting); false, instead of waiting
  // forever, if `record` got answered meanwhile: its batch did not wait.
  bool WaitingUntil(int64_t deadline, const Record& record) {
    while (!clock_.IsWaiting(deadline)) {
      if (record->done()) return false;
      std::this_thread::yield();
    }
    return true;
  }

  // The segments of kernel call `i`, as the tasks' input pointers.
  std::vector<const void*> CallInputs(size_t i) {
    const std::vector<std::vector<kernel::Segment>> calls = kernel_.calls();
    std::vector<const void*> inputs;
    for (const kernel::Segment& s : calls.at(i)) inputs.push_back(s.in);
    return inputs;
  }

  std::vector<CloseReason> Reasons() {
    std::vector<CloseReason> reasons;
    for (const auto& batch : observer_.batches()) {
      reasons.push_back(batch.reason);
    }
    return reasons;
  }

  bool inline_ = false;  // Start() turns run_inline_when_idle on
  std::thread blocker_;  // Block()'s, when inline_
  uint32_t seed_ = 0;
  FakeClock clock_;
  StubKernel kernel_{&clock_};
  RecordingObserver observer_;
  std::unique_ptr<BatchScheduler> scheduler_;  // destroyed first
};

// Behaviour that does not depend on run_inline_when_idle: each test runs with
// it off and on (where the blocker and idle tasks run inline). With a batch
// delay the option is off anyway.
class BatchSchedulerModeTest : public BatchSchedulerTest,
                               public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override { inline_ = GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(InlineWhenIdle, BatchSchedulerModeTest,
                         ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "On" : "Off";
                         });

TEST_P(BatchSchedulerModeTest, IdleKernelRunsATaskAtOnce) {
  Start({});
  const int64_t t0 = clock_.NowMicros();
  Record a = Submit(5);
  ExpectAnswered(a, absl::StatusCode::kOk);
  EXPECT_EQ(clock_.NowMicros(), t0);
  ASSERT_EQ(kernel_.calls().size(), 1u);
  EXPECT_EQ(CallInputs(0), std::vector<const void*>{a->in});
  EXPECT_EQ(kernel_.calls()[0][0].out, a->out);
  ExpectFinished({a});
  ASSERT_EQ(observer_.batches().size(), 1u);
  EXPECT_EQ(observer_.batches()[0].requests, 1u);
  EXPECT_EQ(observer_.batches()[0].elements, 5u);
  EXPECT_EQ(observer_.batches()[0].reason, CloseReason::kIdle);
}

TEST_P(BatchSchedulerModeTest, CoalescesTasksQueuedBehindARunningBatch) {
  Start({});
  Record blocker = Block();
  Record a = Submit(3), b = Submit(7), c = Submit(2);
  EXPECT_EQ(scheduler_->queued_requests(), 3u);
  EXPECT_EQ(scheduler_->queued_bytes(), (3u + 7u + 2u) * 4);
  kernel_.Release();
  for (const Record& r : {blocker, a, b, c}) {
    ExpectAnswered(r, absl::StatusCode::kOk);
  }
  ASSERT_EQ(kernel_.calls().size(), 2u);
  EXPECT_EQ(CallInputs(1), (std::vector<const void*>{a->in, b->in, c->in}));
  ExpectFinished({blocker, a, b, c});
  ASSERT_EQ(observer_.batches().size(), 2u);
  EXPECT_EQ(observer_.batches()[1].requests, 3u);
  EXPECT_EQ(observer_.batches()[1].elements, 12u);
  EXPECT_EQ(Reasons(),
            (std::vector<CloseReason>{CloseReason::kIdle, CloseReason::kIdle}));
}

TEST_P(BatchSchedulerModeTest, MaxBatchRequestsSplitsTheQueue) {
  BatchSchedulerOptions options;
  options.max_batch_requests = 2;
  Start(options);
  std::vector<Record> records = {Block()};
  for (int i = 0; i < 5; ++i) records.push_back(Submit(1));
  kernel_.Release();
  for (const Record& r : records) ExpectAnswered(r, absl::StatusCode::kOk);
  ASSERT_EQ(kernel_.calls().size(), 4u);
  EXPECT_EQ(CallInputs(1),
            (std::vector<const void*>{records[1]->in, records[2]->in}));
  EXPECT_EQ(CallInputs(2),
            (std::vector<const void*>{records[3]->in, records[4]->in}));
  EXPECT_EQ(CallInputs(3), (std::vector<const void*>{records[5]->in}));
  ExpectFinished(records);
  EXPECT_EQ(Reasons(), (std::vector<CloseReason>{
                           CloseReason::kIdle, CloseReason::kMaxRequests,
                           CloseReason::kMaxRequests, CloseReason::kIdle}));
}

TEST_P(BatchSchedulerModeTest, MaxBatchElementsSplitsAndABigTaskRunsAlone) {
  BatchSchedulerOptions options;
  options.max_batch_elements = 10;
  Start(options);
  std::vector<Record> records = {Block()};
  for (size_t n : {4, 4, 4, 12, 3, 7, 2}) records.push_back(Submit(n));
  kernel_.Release();
  for (const Record& r : records) ExpectAnswered(r, absl::StatusCode::kOk);
  ASSERT_EQ(kernel_.calls().size(), 6u);
  std::vector<size_t> sizes;
  for (const auto& batch : observer_.batches()) sizes.push_back(batch.elements);
  // [4 4] + 4 > 10; [4] + 12 > 10; [12] alone; [3 7] reaches 10; [2].
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 8, 4, 12, 10, 2}));
  EXPECT_EQ(CallInputs(3), (std::vector<const void*>{records[4]->in}));
  ExpectFinished(records);
  EXPECT_EQ(Reasons(), (std::vector<CloseReason>{
                           CloseReason::kIdle, CloseReason::kMaxElements,
                           CloseReason::kMaxElements, CloseReason::kMaxElements,
                           CloseReason::kMaxElements, CloseReason::kIdle}));
}

TEST_P(BatchSchedulerModeTest, DelayWaitsFromTheFirstTaskThenRunsAll) {
  BatchSchedulerOptions options;
  options.max_batch_delay_micros = 100;
  Start(options);
  const int64_t t0 = clock_.NowMicros();
  Record a = Submit(1);
  ASSERT_TRUE(WaitingUntil(t0 + 100, a));
  Record b = Submit(2);
  clock_.Advance(60);
  Record c = Submit(3);
  // It has seen t0 + 60 and still waits for t0 + 100, not c's arrival + 100.
  ASSERT_TRUE(WaitingUntil(t0 + 100, a));
  EXPECT_FALSE(a->done());
  EXPECT_EQ(kernel_.calls_begun(), 0u);
  clock_.Advance(39);
  ASSERT_TRUE(WaitingUntil(t0 + 100, a));
  EXPECT_EQ(kernel_.calls_begun(), 0u);
  clock_.Advance(1);
  for (const Record& r : {a, b, c}) ExpectAnswered(r, absl::StatusCode::kOk);
  ASSERT_EQ(kernel_.calls().size(), 1u);
  EXPECT_EQ(CallInputs(0), (std::vector<const void*>{a->in, b->in, c->in}));
  ExpectFinished({a, b, c});
  EXPECT_EQ(Reasons(), std::vector<CloseReason>{CloseReason::kDelay});
  EXPECT_EQ(observer_.dequeued(), (std::vector<int64_t>{100, 100, 40}));
}

TEST_P(BatchSchedulerModeTest, DelayedBatchClosesEarlyWhenFull) {
  BatchSchedulerOptions options;
  options.max_batch_delay_micros = 1000000;
  options.max_batch_requests = 3;
  Start(options);
  const int64_t t0 = clock_.NowMicros();
  Record a = Submit(1);
  ASSERT_TRUE(WaitingUntil(t0 + 1000000, a));
  Record b = Submit(1), c = Submit(1);
  for (const Record& r : {a, b, c}) ExpectAnswered(r, absl::StatusCode::kOk);
  EXPECT_EQ(clock_.NowMicros(), t0);
  ExpectFinished({a, b, c});
  EXPECT_EQ(Reasons(), std::vector<CloseReason>{CloseReason::kMaxRequests});
}

TEST_P(BatchSchedulerModeTest, DelayedBatchClosesEarlyOnElements) {
  BatchSchedulerOptions options;
  options.max_batch_delay_micros = 1000000;
  options.max_batch_elements = 10;
  Start(options);
  const int64_t t0 = clock_.NowMicros();
  Record a = Submit(6);
  ASSERT_TRUE(WaitingUntil(t0 + 1000000, a));
  Record b = Submit(4);
  for (const Record& r : {a, b}) ExpectAnswered(r, absl::StatusCode::kOk);
  ExpectFinished({a, b});
  EXPECT_EQ(Reasons(), std::vector<CloseReason>{CloseReason::kMaxElements});
}

TEST_P(BatchSchedulerModeTest, QueueFullOnRequestsRefusesAndCallerKeepsTask) {
  BatchSchedulerOptions options;
  options.max_queue_requests = 2;
  Start(options);
  Record blocker = Block();
  Record a = Submit(1), b = Submit(1);
  Record refused;
  std::unique_ptr<BatchTask> task = MakeTask({}, &refused);
  const absl::Status status = scheduler_->Schedule(task);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(),
            "queue full: 2 requests queued, limit --max-queue-requests=2");
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(observer_.rejections(),
            std::vector<RejectReason>{RejectReason::kQueueFull});
  kernel_.Release();
  for (const Record& r : {blocker, a, b}) {
    ExpectAnswered(r, absl::StatusCode::kOk);
  }
  ExpectFinished({blocker, a, b});
  EXPECT_EQ(refused->done_calls(), 0);
  EXPECT_FALSE(refused->destroyed());
  task.reset();
  EXPECT_TRUE(refused->destroyed());
}

TEST_P(BatchSchedulerModeTest, QueueFullOnBytes) {
  BatchSchedulerOptions options;
  options.max_queue_bytes = 100;
  Start(options);
  Record blocker = Block();
  TaskSpec spec;
  spec.bytes = 60;
  Record a = Submit(spec);
  spec.bytes = 50;
  Record refused;
  std::unique_ptr<BatchTask> task = MakeTask(spec, &refused);
  const absl::Status status = scheduler_->Schedule(task);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(),
            "queue full: 60 bytes queued + 50 requested, limit "
            "--max-queue-bytes=100");
  EXPECT_NE(task, nullptr);
  spec.bytes = 40;  // exactly up to the limit
  Record b = Submit(spec);
  EXPECT_EQ(scheduler_->queued_bytes(), 100u);
  kernel_.Release();
  for (const Record& r : {blocker, a, b}) {
    ExpectAnswered(r, absl::StatusCode::kOk);
  }
  EXPECT_EQ(scheduler_->queued_bytes(), 0u);
  ExpectFinished({blocker, a, b});
  EXPECT_EQ(refused->done_calls(), 0);
}

TEST_P(BatchSchedulerModeTest, ExpiredTaskAnsweredWithoutKernelTime) {
  Start({});
  Record blocker = Block();
  const int64_t now = clock_.NowMicros();
  TaskSpec spec;
  spec.deadline_micros = now + 50;  // expires exactly at the Advance below
  Record expired = Submit(spec);
  spec.deadline_micros = now + 51;
  spec.seed = 2;
  Record in_time = Submit(spec);
  Record no_deadline = Submit(3);
  clock_.Advance(50);
  kernel_.Release();
  ExpectAnswered(expired, absl::StatusCode::kDeadlineExceeded);
  ExpectAnswered(in_time, absl::StatusCode::kOk);
  ExpectAnswered(no_deadline, absl::StatusCode::kOk);
  ExpectAnswered(blocker, absl::StatusCode::kOk);
  ASSERT_EQ(kernel_.calls().size(), 2u);
  EXPECT_EQ(CallInputs(1),
            (std::vector<const void*>{in_time->in, no_deadline->in}));
  ExpectFinished({blocker, expired, in_time, no_deadline});
  EXPECT_EQ(observer_.rejections(),
            std::vector<RejectReason>{RejectReason::kDeadline});
  EXPECT_EQ(observer_.batches().at(1).requests, 2u);
}

TEST_P(BatchSchedulerModeTest, CancelledTaskAnsweredWithoutKernelTime) {
  Start({});
  Record blocker = Block();
  Record a = Submit(2), cancelled = Submit(3), b = Submit(4);
  cancelled->cancel = true;
  kernel_.Release();
  ExpectAnswered(cancelled, absl::StatusCode::kCancelled);
  ExpectAnswered(a, absl::StatusCode::kOk);
  ExpectAnswered(b, absl::StatusCode::kOk);
  ASSERT_EQ(kernel_.calls().size(), 2u);
  EXPECT_EQ(CallInputs(1), (std::vector<const void*>{a->in, b->in}));
  ExpectFinished({blocker, a, cancelled, b});
  EXPECT_EQ(observer_.rejections(),
            std::vector<RejectReason>{RejectReason::kCancelled});
}

TEST_P(BatchSchedulerModeTest, BatchOfOnlyDroppedTasksNeverCallsTheKernel) {
  Start({});
  Record blocker = Block();
  TaskSpec spec;
  spec.deadline_micros = clock_.NowMicros() + 1;
  Record expired = Submit(spec);
  Record cancelled = Submit(2);
  cancelled->cancel = true;
  clock_.Advance(1);
  kernel_.Release();
  ExpectAnswered(expired, absl::StatusCode::kDeadlineExceeded);
  ExpectAnswered(cancelled, absl::StatusCode::kCancelled);
  ExpectFinished({blocker, expired, cancelled});
  EXPECT_EQ(kernel_.calls().size(), 1u);
  EXPECT_EQ(observer_.batches().size(), 1u);
}

TEST_P(BatchSchedulerModeTest, ExpiryDuringTheDelayIsCaughtAtFormation) {
  BatchSchedulerOptions options;
  options.max_batch_delay_micros = 100;
  Start(options);
  const int64_t t0 = clock_.NowMicros();
  Record a = Submit(1);
  TaskSpec spec;
  spec.deadline_micros = t0 + 100;
  Record expires = Submit(spec);
  ASSERT_TRUE(WaitingUntil(t0 + 100, a));
  clock_.Advance(100);
  ExpectAnswered(a, absl::StatusCode::kOk);
  ExpectAnswered(expires, absl::StatusCode::kDeadlineExceeded);
  ExpectFinished({a, expires});
  ASSERT_EQ(kernel_.calls().size(), 1u);
  EXPECT_EQ(CallInputs(0), std::vector<const void*>{a->in});
}

TEST_P(BatchSchedulerModeTest, MixedDtypesAndParamsEachGetTheirOwnResult) {
  Start({});
  Record blocker = Block();
  std::vector<Record> records;
  const DType dtypes[] = {DType::kFloat32,  DType::kFloat64, DType::kFloat16,
                          DType::kBFloat16, DType::kFloat32, DType::kFloat64};
  for (int i = 0; i < 6; ++i) {
    TaskSpec spec;
    spec.dtype = dtypes[i];
    spec.n = 3 + 5 * i;
    spec.seed = 100 + i;
    spec.params.threshold = 0.5 * i;
    spec.params.negative_slope = i % 2 == 0 ? 0.0 : 0.25;
    if (i >= 3) spec.params.max_value = 1.0 + i;
    records.push_back(Submit(spec));
  }
  kernel_.Release();
  for (const Record& r : records) ExpectAnswered(r, absl::StatusCode::kOk);
  ASSERT_EQ(kernel_.calls().size(), 2u);
  const std::vector<kernel::Segment> batch = kernel_.calls()[1];
  ASSERT_EQ(batch.size(), records.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(batch[i].in, records[i]->in) << "no copy of the input";
    EXPECT_EQ(batch[i].out, records[i]->out) << "no copy of the output";
    EXPECT_EQ(batch[i].dtype, dtypes[i]);
    EXPECT_EQ(batch[i].params.threshold, 0.5 * i);
    // The inputs differ, so a swapped result would not match.
    EXPECT_NE(records[i]->expected,
              std::vector<uint8_t>(records[i]->expected.size(), 0));
  }
  records.push_back(blocker);
  ExpectFinished(records);
}

TEST_P(BatchSchedulerModeTest, DrainAnswersEverythingThenRefuses) {
  Start({});
  std::vector<Record> records = {Block()};
  for (int i = 0; i < 3; ++i) records.push_back(Submit(2));
  size_t cut = 99;
  std::thread drainer([&] { cut = scheduler_->Drain(); });
  while (!scheduler_->draining()) std::this_thread::yield();
  Record refused;
  std::unique_ptr<BatchTask> task = MakeTask({}, &refused);
  absl::Status status = scheduler_->Schedule(task);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "server is draining");
  EXPECT_NE(task, nullptr);
  kernel_.Release();
  drainer.join();
  EXPECT_EQ(cut, 0u);
  for (const Record& r : records) EXPECT_EQ(r->status(), absl::OkStatus());
  for (const Record& r : records) EXPECT_TRUE(r->destroyed());
  status = scheduler_->Schedule(task);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(scheduler_->Drain(), 0u);
  ExpectFinished(records);
  EXPECT_EQ(refused->done_calls(), 0);
  EXPECT_EQ(observer_.rejections(RejectReason::kDraining), 2u);
}

TEST_P(BatchSchedulerModeTest, DrainTimeoutCutsQueuedTasks) {
  Start({});
  Record blocker = Block();
  std::vector<Record> queued;
  for (int i = 0; i < 3; ++i) queued.push_back(Submit(2));
  size_t cut = 99;
  std::thread drainer([&] { cut = scheduler_->Drain(100); });
  while (!scheduler_->draining()) std::this_thread::yield();
  clock_.Advance(100);
  kernel_.Release();
  drainer.join();
  EXPECT_EQ(cut, 3u);
  EXPECT_EQ(blocker->status(), absl::OkStatus());
  for (const Record& r : queued) {
    ExpectAnswered(r, absl::StatusCode::kUnavailable);
    EXPECT_EQ(r->status().message(), "server shut down before the call ran");
  }
  EXPECT_EQ(kernel_.calls().size(), 1u);
  ExpectFinished(queued);
  EXPECT_EQ(observer_.rejections(RejectReason::kDraining), 3u);
  EXPECT_EQ(observer_.dequeued().size(), 4u);
}

TEST_P(BatchSchedulerModeTest, DrainWithinTimeoutRunsEverything) {
  Start({});
  Record blocker = Block();
  Record a = Submit(2), b = Submit(2);
  size_t cut = 99;
  std::thread drainer([&] { cut = scheduler_->Drain(100); });
  while (!scheduler_->draining()) std::this_thread::yield();
  clock_.Advance(99);
  kernel_.Release();
  drainer.join();
  EXPECT_EQ(cut, 0u);
  for (const Record& r : {blocker, a, b}) {
    ExpectAnswered(r, absl::StatusCode::kOk);
  }
  ExpectFinished({blocker, a, b});
}

TEST_P(BatchSchedulerModeTest, ConcurrentDrainsBothWaitForTheEnd) {
  Start({});
  Record blocker = Block();
  Record a = Submit(2), b = Submit(2);
  size_t cut[2] = {99, 99};
  std::thread first([&] { cut[0] = scheduler_->Drain(); });
  std::thread second([&] { cut[1] = scheduler_->Drain(); });
  while (!scheduler_->draining()) std::this_thread::yield();
  kernel_.Release();
  first.join();
  second.join();
  EXPECT_EQ(cut[0], 0u);
  EXPECT_EQ(cut[1], 0u);
  // Whichever returned, the thread had finished every task.
  for (const Record& r : {blocker, a, b}) {
    EXPECT_EQ(r->status(), absl::OkStatus());
    EXPECT_TRUE(r->destroyed());
  }
  ExpectFinished({blocker, a, b});
}

TEST_P(BatchSchedulerModeTest, DrainStopsADelayWait) {
  BatchSchedulerOptions options;
  options.max_batch_delay_micros = 1000;
  Start(options);
  const int64_t t0 = clock_.NowMicros();
  Record a = Submit(1);
  ASSERT_TRUE(WaitingUntil(t0 + 1000, a));
  EXPECT_EQ(scheduler_->Drain(), 0u);
  ExpectAnswered(a, absl::StatusCode::kOk);
  EXPECT_EQ(clock_.NowMicros(), t0);
  ExpectFinished({a});
  EXPECT_EQ(Reasons(), std::vector<CloseReason>{CloseReason::kIdle});
}

TEST_P(BatchSchedulerModeTest, DestructorDrainsQueuedTasks) {
  Start({});
  Record blocker = Block();
  Record a = Submit(2);
  kernel_.Release();
  JoinBlocker();
  scheduler_.reset();
  EXPECT_EQ(blocker->status(), absl::OkStatus());
  EXPECT_EQ(a->status(), absl::OkStatus());
  EXPECT_TRUE(a->destroyed());
}

TEST_F(BatchSchedulerTest, ObserverSeesQueueDequeueAndBatches) {
  kernel_.set_micros_per_call(7);  // each call takes 7 us of clock time
  Start({});
  kernel_.Hold();
  TaskSpec spec;
  spec.bytes = 5;
  Record blocker = Submit(spec);
  kernel_.WaitForCalls(1);
  spec.bytes = 10;
  Record a = Submit(spec);
  spec.bytes = 20;
  spec.n = 6;
  Record b = Submit(spec);
  clock_.Advance(30);
  kernel_.Release();
  for (const Record& r : {blocker, a, b}) {
    ExpectAnswered(r, absl::StatusCode::kOk);
  }
  scheduler_.reset();
  using Q = RecordingObserver::QueueState;
  EXPECT_EQ(observer_.queue_states(),
            (std::vector<Q>{{1, 5}, {0, 0}, {1, 10}, {2, 30}, {0, 0}}));
  // The blocker left at once; a and b waited 30 + the blocker's 7.
  EXPECT_EQ(observer_.dequeued(), (std::vector<int64_t>{0, 37, 37}));
  const auto batches = observer_.batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].requests, 1u);
  EXPECT_EQ(batches[0].elements, 4u);
  EXPECT_EQ(batches[0].kernel_micros, 37);
  EXPECT_EQ(batches[1].requests, 2u);
  EXPECT_EQ(batches[1].elements, 10u);
  EXPECT_EQ(batches[1].kernel_micros, 7);
  EXPECT_TRUE(observer_.rejections().empty());
}

TEST_P(BatchSchedulerModeTest, NullTaskIsInvalid) {
  Start({});
  std::unique_ptr<BatchTask> task;
  EXPECT_EQ(scheduler_->Schedule(task).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BatchSchedulerTest, WithoutInlineAnIdleTaskRunsOnTheSchedulerThread) {
  Start({});
  Record a = Submit(2);
  ExpectAnswered(a, absl::StatusCode::kOk);
  EXPECT_NE(a->done_thread(), std::this_thread::get_id());
  EXPECT_NE(kernel_.call_threads().at(0), std::this_thread::get_id());
  ExpectFinished({a});
}

// --- run_inline_when_idle ---

TEST_F(BatchSchedulerTest, InlineRunsAnIdleTaskOnTheCallersThread) {
  StartInline();
  const int64_t t0 = clock_.NowMicros();
  Record a = Submit(5);
  // Answered and destroyed before Schedule() returned, on this thread.
  EXPECT_EQ(a->done_calls(), 1);
  EXPECT_TRUE(a->destroyed());
  EXPECT_EQ(a->done_calls_at_destruction(), 1);
  EXPECT_EQ(a->done_thread(), std::this_thread::get_id());
  ExpectAnswered(a, absl::StatusCode::kOk);
  ASSERT_EQ(kernel_.calls().size(), 1u);
  EXPECT_EQ(kernel_.call_threads()[0], std::this_thread::get_id());
  EXPECT_EQ(CallInputs(0), std::vector<const void*>{a->in});
  EXPECT_EQ(kernel_.calls()[0][0].out, a->out);
  EXPECT_EQ(scheduler_->queued_requests(), 0u);
  // The next idle task runs inline too: the kernel was freed.
  Record b = Submit(3);
  EXPECT_EQ(b->done_thread(), std::this_thread::get_id());
  ExpectAnswered(b, absl::StatusCode::kOk);
  EXPECT_EQ(clock_.NowMicros(), t0);
  ExpectFinished({a, b});
  EXPECT_EQ(Reasons(),
            (std::vector<CloseReason>{CloseReason::kIdle, CloseReason::kIdle}));
}

TEST_F(BatchSchedulerTest, ArrivalsDuringAnInlineRunQueueThenFormOneBatch) {
  StartInline();
  kernel_.Hold();
  Record first;
  std::thread runner = SubmitOnAnotherThread(&first);
  const std::thread::id runner_id = runner.get_id();
  kernel_.WaitForCalls(1);
  // The kernel is busy inline: these queue, and Schedule() returns at once.
  Record a = Submit(3), b = Submit(7), c = Submit(2);
  for (const Record& r : {a, b, c}) EXPECT_FALSE(r->done());
  EXPECT_EQ(scheduler_->queued_requests(), 3u);
  EXPECT_EQ(scheduler_->queued_bytes(), (3u + 7u + 2u) * 4);
  // The scheduler thread does not start their batch while the inline run
  // holds the kernel.
  EXPECT_TRUE(SchedulerThreadSleeps([&] { return kernel_.calls_begun() > 1; }));
  EXPECT_EQ(kernel_.calls_begun(), 1u);
  kernel_.Release();
  runner.join();
  for (const Record& r : {first, a, b, c}) {
    ExpectAnswered(r, absl::StatusCode::kOk);
  }
  EXPECT_EQ(first->done_thread(), runner_id);
  ASSERT_EQ(kernel_.calls().size(), 2u);
  EXPECT_EQ(CallInputs(1), (std::vector<const void*>{a->in, b->in, c->in}));
  const std::vector<std::thread::id> threads = kernel_.call_threads();
  EXPECT_EQ(threads[0], runner_id);
  EXPECT_NE(threads[1], runner_id);
  EXPECT_NE(threads[1], std::this_thread::get_id());
  for (const Record& r : {a, b, c}) EXPECT_EQ(r->done_thread(), threads[1]);
  EXPECT_EQ(kernel_.max_concurrent_calls(), 1u);
  ExpectFinished({first, a, b, c});
  ASSERT_EQ(observer_.batches().size(), 2u);
  EXPECT_EQ(observer_.batches()[0].requests, 1u);
  EXPECT_EQ(observer_.batches()[1].requests, 3u);
  EXPECT_EQ(observer_.batches()[1].elements, 12u);
}

TEST_F(BatchSchedulerTest, InlineWaitsWhileTheSchedulerThreadsBatchRuns) {
  StartInline();
  kernel_.Hold();
  Record first;
  std::thread runner = SubmitOnAnotherThread(&first);
  kernel_.WaitForCalls(1);
  Record a = Submit(1);  // queued behind the inline run
  kernel_.ReleaseBegun();
  kernel_.WaitForCalls(2);  // the scheduler thread's batch [a], held
  runner.join();
  // The queue is empty but the kernel is busy on the scheduler thread, so b
  // queues. (From another thread: run inline, it would block in the kernel.)
  Record b;
  std::thread submitter = SubmitOnAnotherThread(&b);
  while (scheduler_->queued_requests() == 0 && kernel_.calls_begun() == 2) {
    std::this_thread::yield();
  }
  EXPECT_EQ(kernel_.calls_begun(), 2u) << "b entered the kernel";
  EXPECT_FALSE(b->done());
  EXPECT_EQ(scheduler_->queued_requests(), 1u);
  kernel_.Release();
  submitter.join();
  for (const Record& r : {first, a, b}) {
    ExpectAnswered(r, absl::StatusCode::kOk);
  }
  ASSERT_EQ(kernel_.calls().size(), 3u);
  EXPECT_EQ(CallInputs(1), std::vector<const void*>{a->in});
  EXPECT_EQ(CallInputs(2), std::vector<const void*>{b->in});
  const std::vector<std::thread::id> threads = kernel_.call_threads();
  EXPECT_EQ(threads[1], threads[2]);
  EXPECT_NE(threads[2], std::this_thread::get_id());
  EXPECT_EQ(b->done_thread(), threads[2]);
  EXPECT_EQ(kernel_.max_concurrent_calls(), 1u);
  ExpectFinished({first, a, b});
}

TEST_F(BatchSchedulerTest, InlineAnswersCancelledAndExpiredTasksWithoutKernel) {
  StartInline();
  Record cancelled;
  std::unique_ptr<BatchTask> task = MakeTask({}, &cancelled);
  cancelled->cancel = true;
  ASSERT_TRUE(scheduler_->Schedule(task).ok());
  EXPECT_EQ(task, nullptr);
  EXPECT_TRUE(cancelled->destroyed());
  EXPECT_EQ(cancelled->done_thread(), std::this_thread::get_id());
  ExpectAnswered(cancelled, absl::StatusCode::kCancelled);
  EXPECT_EQ(cancelled->status().message(), "call cancelled while queued");

  TaskSpec spec;
  spec.deadline_micros = clock_.NowMicros();  // expires now
  Record expired = Submit(spec);
  EXPECT_TRUE(expired->destroyed());
  EXPECT_EQ(expired->done_thread(), std::this_thread::get_id());
  ExpectAnswered(expired, absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(expired->status().message(), "deadline exceeded while queued");
  EXPECT_EQ(kernel_.calls_begun(), 0u);

  // Neither left the kernel marked busy: the next idle task runs inline.
  Record a = Submit(2);
  EXPECT_EQ(a->done_thread(), std::this_thread::get_id());
  ExpectAnswered(a, absl::StatusCode::kOk);
  ExpectFinished({cancelled, expired, a});
  EXPECT_EQ(observer_.rejections(),
            (std::vector<RejectReason>{RejectReason::kCancelled,
                                       RejectReason::kDeadline}));
  EXPECT_EQ(observer_.dequeued(), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(observer_.batches().size(), 1u);
}

TEST_F(BatchSchedulerTest, InlineIsOffWhenABatchDelayIsSet) {
  BatchSchedulerOptions options;
  options.max_batch_delay_micros = 100;
  StartInline(options);
  const int64_t t0 = clock_.NowMicros();
  Record a = Submit(1);
  EXPECT_FALSE(a->done());
  ASSERT_TRUE(WaitingUntil(t0 + 100, a));
  Record b = Submit(2);
  EXPECT_FALSE(b->done());
  clock_.Advance(100);
  for (const Record& r : {a, b}) ExpectAnswered(r, absl::StatusCode::kOk);
  EXPECT_NE(a->done_thread(), std::this_thread::get_id());
  ASSERT_EQ(kernel_.calls().size(), 1u);
  EXPECT_EQ(CallInputs(0), (std::vector<const void*>{a->in, b->in}));
  ExpectFinished({a, b});
  EXPECT_EQ(Reasons(), std::vector<CloseReason>{CloseReason::kDelay});
}

TEST_F(BatchSchedulerTest, InlineKeepsTheQueueLimits) {
  BatchSchedulerOptions options;
  options.max_queue_bytes = 10;
  StartInline(options);
  TaskSpec spec;
  spec.bytes = 11;
  Record refused;
  std::unique_ptr<BatchTask> task = MakeTask(spec, &refused);
  const absl::Status status = scheduler_->Schedule(task);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(),
            "queue full: 0 bytes queued + 11 requested, limit "
            "--max-queue-bytes=10");
  EXPECT_NE(task, nullptr);
  spec.bytes = 10;
  Record a = Submit(spec);
  EXPECT_EQ(a->done_thread(), std::this_thread::get_id());
  ExpectFinished({a});
  EXPECT_EQ(refused->done_calls(), 0);
  EXPECT_EQ(kernel_.calls().size(), 1u);
}

TEST_F(BatchSchedulerTest, InlineRefusesWhenDraining) {
  StartInline();
  EXPECT_EQ(scheduler_->Drain(), 0u);
  Record refused;
  std::unique_ptr<BatchTask> task = MakeTask({}, &refused);
  const absl::Status status = scheduler_->Schedule(task);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "server is draining");
  EXPECT_NE(task, nullptr);
  EXPECT_EQ(kernel_.calls_begun(), 0u);
  EXPECT_EQ(refused->done_calls(), 0);
  EXPECT_EQ(observer_.rejections(),
            std::vector<RejectReason>{RejectReason::kDraining});
}

TEST_F(BatchSchedulerTest, DrainWaitsForAnInlineRun) {
  StartInline();
  kernel_.Hold();
  Record first;
  std::thread runner = SubmitOnAnotherThread(&first);
  kernel_.WaitForCalls(1);
  std::atomic<bool> drained{false};
  bool first_done_at_return = false, first_destroyed_at_return = false;
  size_t cut = 99;
  std::thread drainer([&] {
    cut = scheduler_->Drain();
    first_done_at_return = first->done();
    first_destroyed_at_return = first->destroyed();
    drained = true;
  });
  while (!scheduler_->draining()) std::this_thread::yield();
  // The scheduler thread has seen the drain and the inline run, and sleeps
  // instead of stopping: Drain() cannot have returned.
  EXPECT_TRUE(SchedulerThreadSleeps([&] { return drained.load(); }));
  EXPECT_FALSE(drained.load());
  EXPECT_FALSE(first->done());
  kernel_.Release();
  runner.join();
  drainer.join();
  EXPECT_EQ(cut, 0u);
  EXPECT_TRUE(first_done_at_return);
  EXPECT_TRUE(first_destroyed_at_return);
  ExpectAnswered(first, absl::StatusCode::kOk);
  ExpectFinished({first});
}

// --- inline_max_elements: small tasks run at once on their caller's thread ---

// With inline_max_elements 4: tasks of 1 element are small, of 10 are not.
BatchSchedulerOptions SmallInline() {
  BatchSchedulerOptions options;
  options.inline_max_elements = 4;
  return options;
}

TEST_F(BatchSchedulerTest, SmallTasksRunBesideARunningBatch) {
  Start(SmallInline());
  kernel_.Hold();
  Record batch = Submit(10);  // the scheduler thread's, held in the kernel
  kernel_.WaitForCalls(1);
  Record small;
  std::thread submitter = SubmitOnAnotherThread(&small);
  const std::thread::id submitter_id = submitter.get_id();
  kernel_.WaitForCalls(2);  // in the kernel while the batch holds it
  EXPECT_EQ(scheduler_->queued_requests(), 0u);
  kernel_.Release();
  submitter.join();
  ExpectAnswered(batch, absl::StatusCode::kOk);
  ExpectAnswered(small, absl::StatusCode::kOk);
  EXPECT_EQ(small->done_thread(), submitter_id);
  EXPECT_EQ(kernel_.call_threads().at(1), submitter_id);
  EXPECT_EQ(kernel_.max_concurrent_calls(), 2u);
  ExpectFinished({batch, small});
  EXPECT_EQ(observer_.dequeued().size(), 2u);
}

TEST_F(BatchSchedulerTest, BigTasksStillQueueAndBatch) {
  BatchSchedulerOptions options = SmallInline();
  options.run_inline_when_idle = false;
  Start(options);
  Record a = Submit(10);
  ExpectAnswered(a, absl::StatusCode::kOk);
  EXPECT_NE(a->done_thread(), std::this_thread::get_id());
  Record b = Submit(4);  // at the limit: small
  EXPECT_EQ(b->done_thread(), std::this_thread::get_id());
  ExpectAnswered(b, absl::StatusCode::kOk);
  ExpectFinished({a, b});
}

TEST_F(BatchSchedulerTest, SmallTasksAreNotRefusedByAFullQueue) {
  BatchSchedulerOptions options = SmallInline();
  options.max_queue_requests = 1;
  Start(options);
  kernel_.Hold();
  Record running = Submit(10);
  kernel_.WaitForCalls(1);
  Record queued = Submit(10);
  TaskSpec big;
  big.n = 10;
  Record refused;
  std::unique_ptr<BatchTask> task = MakeTask(big, &refused);
  EXPECT_EQ(scheduler_->Schedule(task).code(),
            absl::StatusCode::kResourceExhausted);
  Record small;
  std::thread submitter = SubmitOnAnotherThread(&small);
  kernel_.WaitForCalls(2);
  kernel_.Release();
  submitter.join();
  for (const Record& r : {running, queued, small}) {
    ExpectAnswered(r, absl::StatusCode::kOk);
  }
  ExpectFinished({running, queued, small});
  EXPECT_EQ(refused->done_calls(), 0);
}

TEST_F(BatchSchedulerTest, SmallCancelledAndExpiredTasksSkipTheKernel) {
  Start(SmallInline());
  Record cancelled;
  TaskSpec spec;
  spec.n = 1;
  std::unique_ptr<BatchTask> task = MakeTask(spec, &cancelled);
  cancelled->cancel = true;
  ASSERT_TRUE(scheduler_->Schedule(task).ok());
  EXPECT_EQ(cancelled->done_thread(), std::this_thread::get_id());
  ExpectAnswered(cancelled, absl::StatusCode::kCancelled);
  spec.deadline_micros = clock_.NowMicros();
  Record expired = Submit(spec);
  ExpectAnswered(expired, absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(kernel_.calls_begun(), 0u);
  ExpectFinished({cancelled, expired});
  EXPECT_EQ(observer_.rejections(),
            (std::vector<RejectReason>{RejectReason::kCancelled,
                                       RejectReason::kDeadline}));
}

TEST_F(BatchSchedulerTest, SmallTasksAreRefusedWhileDraining) {
  Start(SmallInline());
  EXPECT_EQ(scheduler_->Drain(), 0u);
  Record refused;
  TaskSpec spec;
  spec.n = 1;
  std::unique_ptr<BatchTask> task = MakeTask(spec, &refused);
  EXPECT_EQ(scheduler_->Schedule(task).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(refused->done_calls(), 0);
}

TEST_F(BatchSchedulerTest, DrainWaitsForASmallInlineRun) {
  Start(SmallInline());
  kernel_.Hold();
  Record small;
  std::thread runner = SubmitOnAnotherThread(&small);
  kernel_.WaitForCalls(1);
  std::atomic<bool> drained{false};
  std::thread drainer([&] {
    scheduler_->Drain();
    drained = true;
  });
  while (!scheduler_->draining()) std::this_thread::yield();
  EXPECT_TRUE(SchedulerThreadSleeps([&] { return drained.load(); }));
  EXPECT_FALSE(drained.load());
  kernel_.Release();
  runner.join();
  drainer.join();
  ExpectAnswered(small, absl::StatusCode::kOk);
  ExpectFinished({small});
}

TEST_F(BatchSchedulerTest, DrainRunsTasksQueuedBehindAnInlineRun) {
  StartInline();
  kernel_.Hold();
  Record first;
  std::thread runner = SubmitOnAnotherThread(&first);
  kernel_.WaitForCalls(1);
  Record a = Submit(2), b = Submit(3);
  std::atomic<bool> drained{false};
  size_t cut = 99;
  std::thread drainer([&] {
    cut = scheduler_->Drain();
    drained = true;
  });
  while (!scheduler_->draining()) std::this_thread::yield();
  EXPECT_TRUE(SchedulerThreadSleeps(
      [&] { return drained.load() || kernel_.calls_begun() > 1; }));
  EXPECT_FALSE(drained.load());
  EXPECT_EQ(kernel_.calls_begun(), 1u);
  kernel_.Release();
  runner.join();
  drainer.join();
  EXPECT_EQ(cut, 0u);
  for (const Record& r : {first, a, b}) {
    EXPECT_EQ(r->status(), absl::OkStatus());
    EXPECT_TRUE(r->destroyed());
  }
  ASSERT_EQ(kernel_.calls().size(), 2u);
  EXPECT_EQ(CallInputs(1), (std::vector<const void*>{a->in, b->in}));
  ExpectFinished({first, a, b});
}

TEST_F(BatchSchedulerTest, DrainTimeoutCutsWhatQueuedBehindAnInlineRun) {
  StartInline();
  kernel_.Hold();
  Record first;
  std::thread runner = SubmitOnAnotherThread(&first);
  kernel_.WaitForCalls(1);
  Record a = Submit(2), b = Submit(3);
  std::atomic<bool> drained{false};
  size_t cut = 99;
  std::thread drainer([&] {
    cut = scheduler_->Drain(100);
    drained = true;
  });
  while (!scheduler_->draining()) std::this_thread::yield();
  clock_.Advance(100);
  // Time is up, but the inline run always finishes first.
  EXPECT_TRUE(SchedulerThreadSleepsAgain([&] { return drained.load(); }));
  EXPECT_FALSE(drained.load());
  kernel_.Release();
  runner.join();
  drainer.join();
  EXPECT_EQ(cut, 2u);
  ExpectAnswered(first, absl::StatusCode::kOk);
  for (const Record& r : {a, b}) {
    ExpectAnswered(r, absl::StatusCode::kUnavailable);
    EXPECT_EQ(r->status().message(), "server shut down before the call ran");
  }
  EXPECT_EQ(kernel_.calls().size(), 1u);
  ExpectFinished({first, a, b});
  EXPECT_EQ(observer_.rejections(RejectReason::kDraining), 2u);
}

// A task whose Done() runs `done` (which may call Schedule() or block), and
// that sets `*destroyed` (if given) when destroyed.
class ChainTask final : public BatchTask {
 public:
  explicit ChainTask(std::function<void(absl::Status)> done,
                     std::atomic<bool>* destroyed = nullptr)
      : done_(std::move(done)), destroyed_(destroyed) {
    segment.dtype = kernel::DType::kFloat32;
    segment.in = buffer_.data();
    segment.out = buffer_.data();
    segment.n = buffer_.size();
    bytes = sizeof(buffer_);
  }
  ~ChainTask() override {
    if (destroyed_ != nullptr) *destroyed_ = true;
  }
  void Done(absl::Status status) override { done_(std::move(status)); }

 private:
  std::function<void(absl::Status)> done_;
  std::atomic<bool>* const destroyed_;
  std::array<float, 4> buffer_{1, -2, 3, -4};
};

// Holds a thread (in a task's Done()) until Open().
class Gate {
 public:
  // Marks the gate entered and blocks until Open().
  void Pass() {
    std::unique_lock<std::mutex> lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
  }
  void WaitEntered() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return entered_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool open_ = false;
};

// The scheduler thread keeps the kernel until its batch is answered: while
// it is in a Done(), Schedule() queues rather than running inline.
TEST_F(BatchSchedulerTest, InlineWaitsWhileTheSchedulerThreadAnswersItsBatch) {
  StartInline();
  Gate gate;
  absl::Status gated_status = absl::UnknownError("not answered");
  std::unique_ptr<BatchTask> gated =
      std::make_unique<ChainTask>([&](absl::Status status) {
        gated_status = std::move(status);
        gate.Pass();
      });
  kernel_.Hold();
  Record first;
  std::thread runner = SubmitOnAnotherThread(&first);
  kernel_.WaitForCalls(1);
  ASSERT_TRUE(scheduler_->Schedule(gated).ok());  // queued behind `first`
  kernel_.Release();
  runner.join();
  gate.WaitEntered();  // the scheduler thread answers its batch [gated]
  Record b = Submit(2);
  EXPECT_FALSE(b->done()) << "ran inline while the batch was answered";
  EXPECT_EQ(scheduler_->queued_requests(), 1u);
  gate.Open();
  ExpectAnswered(b, absl::StatusCode::kOk);
  EXPECT_NE(b->done_thread(), std::this_thread::get_id());
  EXPECT_TRUE(gated_status.ok()) << gated_status;
  ASSERT_EQ(kernel_.calls().size(), 3u);
  EXPECT_EQ(CallInputs(2), std::vector<const void*>{b->in});
  ExpectFinished({first, b});
}

// An inline run's Done() is still running when the drain's time is up and
// the tasks queued behind it are cut: Drain() still waits for that Done().
TEST_F(BatchSchedulerTest, DrainWaitsForAnInlineDoneAfterTheCut) {
  StartInline();
  Gate gate;
  absl::Status first_status = absl::UnknownError("not answered");
  std::atomic<bool> first_destroyed{false};
  std::unique_ptr<BatchTask> first = std::make_unique<ChainTask>(
      [&](absl::Status status) {
        first_status = std::move(status);
        gate.Pass();
      },
      &first_destroyed);
  kernel_.Hold();
  std::thread runner([&] { EXPECT_TRUE(scheduler_->Schedule(first).ok()); });
  kernel_.WaitForCalls(1);
  Record a = Submit(2);
  std::atomic<bool> drained{false};
  bool destroyed_at_return = false;
  size_t cut = 99;
  std::thread drainer([&] {
    cut = scheduler_->Drain(100);
    destroyed_at_return = first_destroyed.load();
    drained = true;
  });
  while (!scheduler_->draining()) std::this_thread::yield();
  clock_.Advance(100);
  kernel_.Release();
  gate.WaitEntered();  // the kernel is free again, Done() is running
  ExpectAnswered(a, absl::StatusCode::kUnavailable);
  // The thread cut `a` and must now wait for Done() to return.
  EXPECT_TRUE(SchedulerThreadSleeps([&] { return drained.load(); }));
  EXPECT_FALSE(drained.load());
  gate.Open();
  runner.join();
  drainer.join();
  EXPECT_EQ(cut, 1u);
  EXPECT_TRUE(first_status.ok()) << first_status;
  EXPECT_TRUE(destroyed_at_return);
  ExpectFinished({a});
}

TEST_F(BatchSchedulerTest, ScheduleFromAnInlineDoneQueues) {
  StartInline();
  absl::Status first_status = absl::UnknownError("not answered");
  absl::Status follow_up_scheduled = absl::UnknownError("not scheduled");
  Record follow_up;
  std::unique_ptr<BatchTask> task =
      std::make_unique<ChainTask>([&](absl::Status status) {
        first_status = std::move(status);
        TaskSpec spec;
        spec.n = 3;
        std::unique_ptr<BatchTask> next = MakeTask(spec, &follow_up);
        follow_up_scheduled = scheduler_->Schedule(next);
      });
  ASSERT_TRUE(scheduler_->Schedule(task).ok());
  // Both Done() and its Schedule() ran before the outer Schedule() returned.
  EXPECT_TRUE(first_status.ok()) << first_status;
  EXPECT_TRUE(follow_up_scheduled.ok()) << follow_up_scheduled;
  ASSERT_NE(follow_up, nullptr);
  // The follow-up queued: the scheduler thread ran it, not this stack.
  ExpectAnswered(follow_up, absl::StatusCode::kOk);
  EXPECT_NE(follow_up->done_thread(), std::this_thread::get_id());
  const std::vector<std::thread::id> threads = kernel_.call_threads();
  ASSERT_EQ(threads.size(), 2u);
  EXPECT_EQ(threads[0], std::this_thread::get_id());
  EXPECT_NE(threads[1], std::this_thread::get_id());
  ExpectFinished({follow_up});
  // Outside that Done(), this thread runs idle tasks inline again.
  StartInline();
  Record a = Submit(1);
  EXPECT_EQ(a->done_thread(), std::this_thread::get_id());
}

TEST_F(BatchSchedulerTest, ObserverSeesInlineRuns) {
  kernel_.set_micros_per_call(7);
  StartInline();
  TaskSpec spec;
  spec.bytes = 5;
  spec.n = 6;
  Record a = Submit(spec);
  ASSERT_TRUE(a->done());
  Record cancelled;
  std::unique_ptr<BatchTask> task = MakeTask(spec, &cancelled);
  cancelled->cancel = true;
  ASSERT_TRUE(scheduler_->Schedule(task).ok());
  scheduler_.reset();
  // An inline task never enters the queue.
  EXPECT_TRUE(observer_.queue_states().empty());
  EXPECT_EQ(observer_.dequeued(), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(observer_.rejections(),
            std::vector<RejectReason>{RejectReason::kCancelled});
  const auto batches = observer_.batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].requests, 1u);
  EXPECT_EQ(batches[0].elements, 6u);
  EXPECT_EQ(batches[0].reason, CloseReason::kIdle);
  EXPECT_EQ(batches[0].kernel_micros, 7);
}

// A task whose tensor is split across three buffers (as ApplyReLU's are,
// across the slices gRPC received): `pieces` instead of one segment.
class PiecesTask final : public BatchTask {
 public:
  explicit PiecesTask(std::atomic<int>* answered)
      : answered_(answered), in_(12, -1.0f), out_(12) {
    for (size_t i = 0; i < 3; ++i) {
      pieces.push_back(
          {kernel::DType::kFloat32, {}, &in_[4 * i], &out_[4 * i], 4});
    }
    segment = {kernel::DType::kFloat32, {}, nullptr, nullptr, 12};
    bytes = 48;
  }
  void Done(absl::Status status) override {
    if (status.ok()) ++*answered_;
  }

 private:
  std::atomic<int>* const answered_;
  std::vector<float> in_, out_;
};

TEST_P(BatchSchedulerModeTest, PiecesReachTheKernelInTheirTasksPlace) {
  Start({});
  Record blocker = Block();
  Record a = Submit(3);
  std::atomic<int> answered{0};
  auto split = std::make_unique<PiecesTask>(&answered);
  const std::vector<kernel::Segment> pieces = split->pieces;
  std::unique_ptr<BatchTask> task = std::move(split);
  ASSERT_TRUE(scheduler_->Schedule(task).ok());
  Record b = Submit(2);
  EXPECT_EQ(scheduler_->queued_bytes(), (3u + 12u + 2u) * 4);
  kernel_.Release();
  for (const Record& r : {blocker, a, b}) {
    ExpectAnswered(r, absl::StatusCode::kOk);
  }
  EXPECT_EQ(answered.load(), 1);
  ASSERT_EQ(kernel_.calls().size(), 2u);
  EXPECT_EQ(CallInputs(1),
            (std::vector<const void*>{a->in, pieces[0].in, pieces[1].in,
                                      pieces[2].in, b->in}));
  ASSERT_EQ(observer_.batches().size(), 2u);
  EXPECT_EQ(observer_.batches()[1].requests, 3u);
  EXPECT_EQ(observer_.batches()[1].elements, 3u + 12u + 2u);
}

TEST_F(BatchSchedulerTest, InlineRunGivesTheKernelThePieces) {
  StartInline();
  std::atomic<int> answered{0};
  auto split = std::make_unique<PiecesTask>(&answered);
  const std::vector<kernel::Segment> pieces = split->pieces;
  std::unique_ptr<BatchTask> task = std::move(split);
  ASSERT_TRUE(scheduler_->Schedule(task).ok());
  EXPECT_EQ(answered.load(), 1);
  ASSERT_EQ(kernel_.calls().size(), 1u);
  EXPECT_EQ(CallInputs(0), (std::vector<const void*>{pieces[0].in, pieces[1].in,
                                                     pieces[2].in}));
  ASSERT_EQ(observer_.batches().size(), 1u);
  EXPECT_EQ(observer_.batches()[0].elements, 12u);
}

TEST(BatchSchedulerOptionsTest, ValidateNamesTheFlag) {
  EXPECT_TRUE(ValidateOptions({}).ok());
  BatchSchedulerOptions options;
  options.max_batch_requests = 0;
  EXPECT_EQ(ValidateOptions(options).message(),
            "--max-batch-requests must be at least 1, got 0");
  options = {};
  options.max_batch_delay_micros = -1;
  EXPECT_EQ(ValidateOptions(options).message(),
            "--max-batch-delay-us must not be negative, got -1");
  options = {};
  options.max_queue_bytes = 0;
  EXPECT_EQ(ValidateOptions(options).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BatchSchedulerNamesTest, ReasonLabels) {
  EXPECT_STREQ(CloseReasonName(CloseReason::kIdle), "idle");
  EXPECT_STREQ(CloseReasonName(CloseReason::kMaxRequests), "max_requests");
  EXPECT_STREQ(CloseReasonName(CloseReason::kMaxElements), "max_elements");
  EXPECT_STREQ(CloseReasonName(CloseReason::kDelay), "delay");
  EXPECT_STREQ(RejectReasonName(RejectReason::kQueueFull), "queue_full");
  EXPECT_STREQ(RejectReasonName(RejectReason::kDeadline), "deadline");
  EXPECT_STREQ(RejectReasonName(RejectReason::kCancelled), "cancelled");
  EXPECT_STREQ(RejectReasonName(RejectReason::kDraining), "draining");
}

}  // namespace
}  // namespace relu::batching

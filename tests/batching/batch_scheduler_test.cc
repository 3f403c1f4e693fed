// The batcher's behaviour, driven by a fake clock and a stub kernel the test
// can hold: tasks scheduled while a held batch runs queue up, so every test
// knows exactly which tasks form which batch. No test sleeps or measures
// time.
#include "server/batching/batch_scheduler.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
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
    scheduler_.reset();
  }

  void Start(const BatchSchedulerOptions& options) {
    scheduler_ = std::make_unique<BatchScheduler>(options, kernel_.Fn(),
                                                  &clock_, &observer_);
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
  // scheduled next queues behind it until kernel_.Release().
  Record Block() {
    kernel_.Hold();
    const size_t calls = kernel_.calls_begun();
    Record record = Submit(1);
    kernel_.WaitForCalls(calls + 1);
    return record;
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
    scheduler_.reset();
    for (const Record& record : records) {
      EXPECT_EQ(record->done_calls(), 1);
      EXPECT_TRUE(record->destroyed());
      EXPECT_EQ(record->done_calls_at_destruction(), 1);
    }
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

  uint32_t seed_ = 0;
  FakeClock clock_;
  StubKernel kernel_{&clock_};
  RecordingObserver observer_;
  std::unique_ptr<BatchScheduler> scheduler_;  // destroyed first
};

TEST_F(BatchSchedulerTest, IdleKernelRunsATaskAtOnce) {
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

TEST_F(BatchSchedulerTest, CoalescesTasksQueuedBehindARunningBatch) {
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

TEST_F(BatchSchedulerTest, MaxBatchRequestsSplitsTheQueue) {
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

TEST_F(BatchSchedulerTest, MaxBatchElementsSplitsAndABigTaskRunsAlone) {
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

TEST_F(BatchSchedulerTest, DelayWaitsFromTheFirstTaskThenRunsAll) {
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

TEST_F(BatchSchedulerTest, DelayedBatchClosesEarlyWhenFull) {
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

TEST_F(BatchSchedulerTest, DelayedBatchClosesEarlyOnElements) {
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

TEST_F(BatchSchedulerTest, QueueFullOnRequestsRefusesAndCallerKeepsTask) {
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

TEST_F(BatchSchedulerTest, QueueFullOnBytes) {
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

TEST_F(BatchSchedulerTest, ExpiredTaskAnsweredWithoutKernelTime) {
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

TEST_F(BatchSchedulerTest, CancelledTaskAnsweredWithoutKernelTime) {
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

TEST_F(BatchSchedulerTest, BatchOfOnlyDroppedTasksNeverCallsTheKernel) {
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

TEST_F(BatchSchedulerTest, ExpiryDuringTheDelayIsCaughtAtFormation) {
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

TEST_F(BatchSchedulerTest, MixedDtypesAndParamsEachGetTheirOwnResult) {
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

TEST_F(BatchSchedulerTest, DrainAnswersEverythingThenRefuses) {
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

TEST_F(BatchSchedulerTest, DrainTimeoutCutsQueuedTasks) {
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

TEST_F(BatchSchedulerTest, DrainWithinTimeoutRunsEverything) {
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

TEST_F(BatchSchedulerTest, ConcurrentDrainsBothWaitForTheEnd) {
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

TEST_F(BatchSchedulerTest, DrainStopsADelayWait) {
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

TEST_F(BatchSchedulerTest, DestructorDrainsQueuedTasks) {
  Start({});
  Record blocker = Block();
  Record a = Submit(2);
  kernel_.Release();
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

TEST_F(BatchSchedulerTest, NullTaskIsInvalid) {
  Start({});
  std::unique_ptr<BatchTask> task;
  EXPECT_EQ(scheduler_->Schedule(task).code(),
            absl::StatusCode::kInvalidArgument);
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
            "--max-batch-delay-micros must not be negative, got -1");
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

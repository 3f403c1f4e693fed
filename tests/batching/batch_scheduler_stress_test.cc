// Many producer threads schedule tasks of random sizes and dtypes at once,
// some cancelled (before or racing with their batch), some with deadlines
// already past or just ahead, against small queue limits so that some are
// refused. Checks the scheduler's invariants, not timing: every accepted task
// answered exactly once and then destroyed, every refused task left with its
// caller, batch limits kept, segments distinct, results correct, observer
// counts consistent, the kernel never entered twice at once. Each test runs
// with and without a batch delay, and with run_inline_when_idle (where the
// producers' own threads run some batches). Uses the real clock. Also built
// under ThreadSanitizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "server/batching/batch_scheduler.h"
#include "tests/batching/test_util.h"

namespace relu::batching {
namespace {

using testing::MakeTask;
using testing::RecordingObserver;
using testing::ReferenceCompute;
using testing::TaskRecord;
using testing::TaskSpec;
using Record = std::shared_ptr<TaskRecord>;

#ifndef RELU_STRESS_TASKS_PER_THREAD
#define RELU_STRESS_TASKS_PER_THREAD 400
#endif

constexpr int kThreads = 8;
constexpr int kTasksPerThread = RELU_STRESS_TASKS_PER_THREAD;

enum class Fate { kPlain, kCancelledBefore, kCancelledRacing, kExpired, kSoon };

struct Submitted {
  Record record;
  Fate fate;
  absl::Status schedule_status;
};

struct StressConfig {
  int64_t delay_micros;
  bool run_inline;
  size_t inline_max_elements = 0;  // small tasks run inline, concurrently
};

class BatchSchedulerStressTest : public ::testing::TestWithParam<StressConfig> {
 protected:
  // Whether Schedule() may run tasks inline in this configuration.
  static bool InlineActive() {
    return (GetParam().run_inline && GetParam().delay_micros == 0) ||
           GetParam().inline_max_elements > 0;
  }
  // Whether a kernel call may be a small task's, run beside the others.
  static bool MaybeSmall(const kernel::Segment* segments, size_t count) {
    return count == 1 && segments[0].n <= GetParam().inline_max_elements;
  }
};

TEST_P(BatchSchedulerStressTest, ManyProducers) {
  BatchSchedulerOptions options;
  options.max_batch_requests = 8;
  options.max_batch_elements = 256;
  options.max_batch_delay_micros = GetParam().delay_micros;
  options.run_inline_when_idle = GetParam().run_inline;
  options.inline_max_elements = GetParam().inline_max_elements;
  options.max_queue_requests = 48;
  options.max_queue_bytes = 24 * 1024;

  std::mutex kernel_mu;  // guards the kernel's findings
  size_t kernel_calls = 0;
  size_t kernel_segments = 0;
  std::vector<std::string> violations;
  std::set<std::thread::id> kernel_threads;
  std::atomic<int> in_kernel{0};
  std::atomic<unsigned> yield_turn{0};
  auto kernel = [&](const kernel::Segment* segments, size_t count) {
    std::vector<std::string> found;
    // Small tasks' calls may overlap anything; no two others may overlap.
    const bool exempt = MaybeSmall(segments, count);
    if (!exempt && in_kernel.fetch_add(1) != 0) {
      found.push_back("concurrent kernel call");
    }
    // Now and then let other producers run while the kernel is taken, so
    // that tasks queue behind runs (inline ones too) rather than each finding
    // the scheduler idle; every time would fill the queue.
    if (yield_turn.fetch_add(1) % 16 == 0) std::this_thread::yield();
    size_t elements = 0;
    for (size_t i = 0; i < count; ++i) elements += segments[i].n;
    if (count == 0 || count > options.max_batch_requests) {
      found.push_back("batch of " + std::to_string(count) + " requests");
    }
    if (count > 1 && elements > options.max_batch_elements) {
      found.push_back("batch of " + std::to_string(elements) + " elements");
    }
    for (size_t i = 0; i < count; ++i) {
      // Empty tasks (n = 0) may all have a null buffer: nothing to share.
      for (size_t j = i + 1; j < count; ++j) {
        if (segments[i].n > 0 && segments[j].n > 0 &&
            segments[i].out == segments[j].out) {
          found.push_back("shared out");
        }
      }
      ReferenceCompute(segments[i]);
    }
    if (!exempt) in_kernel.fetch_sub(1);
    std::lock_guard<std::mutex> lock(kernel_mu);
    ++kernel_calls;
    kernel_segments += count;
    kernel_threads.insert(std::this_thread::get_id());
    violations.insert(violations.end(), found.begin(), found.end());
  };

  RecordingObserver observer;
  Clock* clock = Clock::Real();
  auto scheduler =
      std::make_unique<BatchScheduler>(options, kernel, clock, &observer);

  std::vector<std::vector<Submitted>> per_thread(kThreads);
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      std::uniform_int_distribution<int> pick(0, 9);
      std::uniform_int_distribution<size_t> size(0, 300);
      for (int i = 0; i < kTasksPerThread; ++i) {
        TaskSpec spec;
        spec.dtype =
            pick(rng) < 5 ? kernel::DType::kFloat32 : kernel::DType::kFloat64;
        spec.n = size(rng);
        spec.seed = static_cast<uint32_t>(t * 100000 + i);
        spec.params.threshold = pick(rng) * 0.25;
        spec.params.negative_slope = pick(rng) < 5 ? 0.0 : 0.5;
        Fate fate = Fate::kPlain;
        switch (pick(rng)) {
          case 0:
            fate = Fate::kCancelledBefore;
            break;
          case 1:
            fate = Fate::kCancelledRacing;
            break;
          case 2:
            fate = Fate::kExpired;
            spec.deadline_micros = clock->NowMicros() - 1;
            break;
          case 3:
            fate = Fate::kSoon;
            spec.deadline_micros = clock->NowMicros() + pick(rng) * 20;
            break;
          default:
            break;
        }
        Record record;
        std::unique_ptr<BatchTask> task = MakeTask(spec, &record);
        if (fate == Fate::kCancelledBefore) record->cancel = true;
        absl::Status status = scheduler->Schedule(task);
        if (!status.ok() && task == nullptr) {
          ADD_FAILURE() << "refused task taken: " << status;
        }
        if (status.ok() && task != nullptr) ADD_FAILURE() << "task kept";
        if (fate == Fate::kCancelledRacing) record->cancel = true;
        per_thread[t].push_back({record, fate, status});
        if (pick(rng) == 0) std::this_thread::yield();
      }
    });
  }
  for (std::thread& producer : producers) producer.join();
  EXPECT_EQ(scheduler->Drain(), 0u);

  size_t accepted = 0, refused = 0, ok = 0, dropped = 0, ok_elements = 0;
  for (const auto& submitted : per_thread) {
    for (const Submitted& s : submitted) {
      if (!s.schedule_status.ok()) {
        ++refused;
        EXPECT_EQ(s.schedule_status.code(),
                  absl::StatusCode::kResourceExhausted);
        EXPECT_EQ(s.record->done_calls(), 0);
        continue;
      }
      ++accepted;
      ASSERT_EQ(s.record->done_calls(), 1);
      ASSERT_TRUE(s.record->destroyed());
      EXPECT_EQ(s.record->done_calls_at_destruction(), 1);
      const absl::StatusCode code = s.record->status().code();
      switch (s.fate) {
        case Fate::kCancelledBefore:
          EXPECT_EQ(code, absl::StatusCode::kCancelled);
          break;
        case Fate::kExpired:
          EXPECT_EQ(code, absl::StatusCode::kDeadlineExceeded);
          break;
        case Fate::kCancelledRacing:
          EXPECT_TRUE(code == absl::StatusCode::kOk ||
                      code == absl::StatusCode::kCancelled)
              << s.record->status();
          break;
        case Fate::kSoon:
          EXPECT_TRUE(code == absl::StatusCode::kOk ||
                      code == absl::StatusCode::kDeadlineExceeded)
              << s.record->status();
          break;
        case Fate::kPlain:
          EXPECT_EQ(code, absl::StatusCode::kOk);
          break;
      }
      if (code == absl::StatusCode::kOk) {
        ++ok;
        ok_elements += s.record->expected.size();
        EXPECT_EQ(s.record->output(), s.record->expected);
      } else {
        ++dropped;
      }
    }
  }
  EXPECT_EQ(accepted + refused, size_t{kThreads} * kTasksPerThread);
  EXPECT_GT(accepted, 0u);
  EXPECT_EQ(violations, std::vector<std::string>{});
  EXPECT_EQ(kernel_segments, ok);
  EXPECT_EQ(observer.dequeued().size(), accepted);
  EXPECT_EQ(observer.rejections(RejectReason::kQueueFull), refused);
  EXPECT_EQ(observer.rejections(RejectReason::kDeadline) +
                observer.rejections(RejectReason::kCancelled),
            dropped);
  size_t batched = 0;
  for (const auto& batch : observer.batches()) batched += batch.requests;
  EXPECT_EQ(batched, ok);
  EXPECT_EQ(observer.batches().size(), kernel_calls);
  // Without inline runs every accepted task went through the queue; with
  // them, queueing is likely (the kernel yields) but up to timing.
  const auto states = observer.queue_states();
  if (!InlineActive()) {
    ASSERT_FALSE(states.empty());
  }
  if (!states.empty()) {
    EXPECT_EQ(states.back().requests, 0u);
    EXPECT_EQ(states.back().bytes, 0u);
  }
  for (const auto& state : states) {
    EXPECT_LE(state.requests, options.max_queue_requests);
    EXPECT_LE(state.bytes, options.max_queue_bytes);
  }
  // Without inline runs only the scheduler thread calls the kernel. (With
  // them, how many producers found the scheduler idle is up to timing.)
  if (!InlineActive()) {
    EXPECT_EQ(kernel_threads.size(), 1u);
  }
  std::printf(
      "accepted %zu refused %zu ok %zu dropped %zu batches %zu "
      "kernel threads %zu queue changes %zu\n",
      accepted, refused, ok, dropped, kernel_calls, kernel_threads.size(),
      states.size());
}

// Drain() starts while the producers are still scheduling, with a short
// timeout: Schedule() calls racing the drain are either accepted (and then
// answered, or cut and counted) or refused as draining, and once a producer
// saw "draining" it never gets a task in again.
TEST_P(BatchSchedulerStressTest, DrainRacesProducers) {
  BatchSchedulerOptions options;
  options.max_batch_requests = 4;
  options.max_batch_elements = 128;
  options.max_batch_delay_micros = GetParam().delay_micros;
  options.run_inline_when_idle = GetParam().run_inline;
  options.inline_max_elements = GetParam().inline_max_elements;
  // Room for every task: here only the drain refuses.
  options.max_queue_requests = size_t{kThreads} * kTasksPerThread;
  options.max_queue_bytes = size_t{1} << 30;
  std::atomic<int> in_kernel{0};
  std::atomic<int> concurrent_calls{0};
  auto kernel = [&](const kernel::Segment* segments, size_t count) {
    const bool exempt = MaybeSmall(segments, count);
    if (!exempt && in_kernel.fetch_add(1) != 0) concurrent_calls.fetch_add(1);
    for (size_t i = 0; i < count; ++i) ReferenceCompute(segments[i]);
    if (!exempt) in_kernel.fetch_sub(1);
  };
  RecordingObserver observer;
  auto scheduler = std::make_unique<BatchScheduler>(options, kernel,
                                                    Clock::Real(), &observer);

  std::atomic<int> scheduled{0};
  std::vector<std::vector<Submitted>> per_thread(kThreads);
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      std::mt19937 rng(99 + t);
      std::uniform_int_distribution<size_t> size(0, 100);
      for (int i = 0; i < kTasksPerThread; ++i) {
        TaskSpec spec;
        spec.n = size(rng);
        spec.seed = static_cast<uint32_t>(t * 100000 + i);
        Record record;
        std::unique_ptr<BatchTask> task = MakeTask(spec, &record);
        absl::Status status = scheduler->Schedule(task);
        if (status.ok() == (task != nullptr)) ADD_FAILURE() << "ownership";
        per_thread[t].push_back({record, Fate::kPlain, status});
        scheduled.fetch_add(1);
      }
    });
  }
  // Start draining once a quarter of the tasks went in (a count, not a time).
  while (scheduled.load() < kThreads * kTasksPerThread / 4) {
    std::this_thread::yield();
  }
  const size_t cut = scheduler->Drain(200);
  for (std::thread& producer : producers) producer.join();

  size_t accepted = 0, unavailable = 0;
  for (const auto& submitted : per_thread) {
    bool refused_draining = false;
    for (const Submitted& s : submitted) {
      if (!s.schedule_status.ok()) {
        EXPECT_EQ(s.schedule_status.code(), absl::StatusCode::kUnavailable);
        EXPECT_EQ(s.schedule_status.message(), "server is draining");
        EXPECT_EQ(s.record->done_calls(), 0);
        refused_draining = true;
        continue;
      }
      EXPECT_FALSE(refused_draining) << "accepted after a draining refusal";
      ++accepted;
      ASSERT_EQ(s.record->done_calls(), 1);
      ASSERT_TRUE(s.record->destroyed());
      if (s.record->status().ok()) {
        EXPECT_EQ(s.record->output(), s.record->expected);
      } else {
        EXPECT_EQ(s.record->status().code(), absl::StatusCode::kUnavailable);
        ++unavailable;
      }
    }
  }
  EXPECT_GT(accepted, 0u);
  EXPECT_EQ(cut, unavailable);
  EXPECT_EQ(concurrent_calls.load(), 0);
  EXPECT_EQ(observer.dequeued().size(), accepted);
  std::printf("accepted %zu cut %zu\n", accepted, cut);
}

INSTANTIATE_TEST_SUITE_P(
    Delays, BatchSchedulerStressTest,
    ::testing::Values(StressConfig{0, false}, StressConfig{50, false},
                      StressConfig{0, true}, StressConfig{50, true},
                      StressConfig{0, true, 8}, StressConfig{50, false, 8}),
    [](const auto& info) {
      return "delay" + std::to_string(info.param.delay_micros) + "us" +
             (info.param.run_inline ? "_inline" : "") +
             (info.param.inline_max_elements > 0
                  ? "_small" + std::to_string(info.param.inline_max_elements)
                  : "");
    });

}  // namespace
}  // namespace relu::batching

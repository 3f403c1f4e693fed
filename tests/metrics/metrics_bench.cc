// Cost of the metrics on the request path. prometheus-cpp 1.0.1's Histogram
// takes a std::mutex per Observe(); counters and gauges are a CAS loop on an
// atomic double. ServerMetrics adds per-call figures to per-thread shards
// instead (sharded_counts.h) and folds them into the children at a scrape.
// Single-thread runs give the uncontended cost, Threads(2) the cost when two
// threads hit the same child at once (the worst case: every call of one
// method shares relu_request_duration_seconds{method}).
//
// A unary call costs tens of microseconds end to end, so the figure that
// matters is BM_PerCallObservations against that. Run:
//   relu_metrics_bench --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <atomic>
#include <mutex>

#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/metrics/server_metrics.h"

namespace relu::metrics {
namespace {

ServerMetrics& Metrics() {
  static ServerMetrics* metrics = new ServerMetrics({"bench", "scalar"});
  return *metrics;
}

// Baselines: an uncontended-or-not atomic add and mutex round trip.
void BM_AtomicFetchAdd(benchmark::State& state) {
  static std::atomic<uint64_t> value{0};
  for (auto _ : state) value.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_AtomicFetchAdd)->Threads(1)->Threads(2);

void BM_MutexLockUnlock(benchmark::State& state) {
  static std::mutex mutex;
  static uint64_t value = 0;
  for (auto _ : state) {
    std::lock_guard<std::mutex> lock(mutex);
    benchmark::DoNotOptimize(++value);
  }
}
BENCHMARK(BM_MutexLockUnlock)->Threads(1)->Threads(2);

void BM_CounterIncrement(benchmark::State& state) {
  static prometheus::Registry registry;
  static prometheus::Counter& counter =
      prometheus::BuildCounter().Name("c_total").Register(registry).Add({});
  for (auto _ : state) counter.Increment();
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2);

// One Observe into the request-duration buckets (20 bounds).
void BM_HistogramObserve(benchmark::State& state) {
  static prometheus::Registry registry;
  static prometheus::Histogram& histogram =
      prometheus::BuildHistogram()
          .Name("h_seconds")
          .Register(registry)
          .Add({}, DecadeBuckets(1e-5, 10));
  double value = 1e-5 * (1 + state.thread_index());
  for (auto _ : state) {
    histogram.Observe(value);
    value = value < 1 ? value * 1.7 : 1e-5;
  }
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2);

// What the service does per answered call.
void BM_OnRequestFinished(benchmark::State& state) {
  ServerMetrics& metrics = Metrics();
  for (auto _ : state) {
    metrics.OnRequestStarted();
    metrics.OnRequestFinished(Method::kApplyReLU, 0, 42e-6, 4096, 4096);
  }
}
BENCHMARK(BM_OnRequestFinished)->Threads(1)->Threads(2);

// Every hook one call touches when it runs alone in a batch (the most
// observations per call; bigger batches share OnBatch).
void BM_PerCallObservations(benchmark::State& state) {
  ServerMetrics& metrics = Metrics();
  for (auto _ : state) {
    metrics.OnRequestStarted();
    metrics.OnQueueChanged(1, 4096);
    metrics.OnDequeued(3);
    metrics.OnQueueChanged(0, 0);
    metrics.OnBatch(1, 1024, batching::CloseReason::kIdle, 2);
    metrics.OnElements(kernel::DType::kFloat32, 1024);
    metrics.OnRequestFinished(Method::kApplyReLU, 0, 42e-6, 4096, 4096);
  }
}
BENCHMARK(BM_PerCallObservations)->Threads(1)->Threads(2);

}  // namespace
}  // namespace relu::metrics

BENCHMARK_MAIN();

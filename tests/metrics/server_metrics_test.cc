// ServerMetrics driven through its API; values read back from the registry.
#include "server/metrics/server_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace relu::metrics {
namespace {

using ::prometheus::ClientMetric;
using ::prometheus::MetricFamily;
using ::prometheus::MetricType;
using Labels = std::map<std::string, std::string>;

class ServerMetricsTest : public ::testing::Test {
 protected:
  ServerMetricsTest() : metrics_({"1.2.3", "avx2"}) {}

  // The family named `name`; fails the test when absent.
  MetricFamily Family(const std::string& name) {
    for (MetricFamily& family : metrics_.registry()->Collect()) {
      if (family.name == name) return family;
    }
    ADD_FAILURE() << "no family " << name;
    return {};
  }

  // The child of `name` with exactly `labels`.
  ClientMetric Child(const std::string& name, const Labels& labels = {}) {
    for (const ClientMetric& metric : Family(name).metric) {
      Labels have;
      for (const auto& label : metric.label) have[label.name] = label.value;
      if (have == labels) return metric;
    }
    ADD_FAILURE() << "no child of " << name << " with the given labels";
    return {};
  }

  double CounterValue(const std::string& name, const Labels& labels = {}) {
    return Child(name, labels).counter.value;
  }

  // Count of observations at or below `bound` (the cumulative bucket).
  uint64_t Bucket(const ClientMetric& metric, double bound) {
    for (const auto& bucket : metric.histogram.bucket) {
      if (bucket.upper_bound == bound) return bucket.cumulative_count;
    }
    ADD_FAILURE() << "no bucket le=" << bound;
    return 0;
  }

  ServerMetrics metrics_;
};

TEST_F(ServerMetricsTest, PreCreatesEveryMethodAndCodeAtZero) {
  const MetricFamily requests = Family("relu_requests_total");
  EXPECT_EQ(requests.type, MetricType::Counter);
  ASSERT_EQ(requests.metric.size(), 3u * 17u);
  for (const char* method : {"ApplyReLU", "ModelInfer", "HttpInfer"}) {
    for (const char* code :
         {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
          "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
          "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
          "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
          "DATA_LOSS", "UNAUTHENTICATED"}) {
      EXPECT_EQ(CounterValue("relu_requests_total",
                             {{"method", method}, {"code", code}}),
                0)
          << method << " " << code;
    }
  }
  EXPECT_EQ(Family("relu_rejected_total").metric.size(), 5u);
  EXPECT_EQ(Family("relu_batch_close_total").metric.size(), 4u);
  EXPECT_EQ(Family("relu_elements_total").metric.size(), 4u);
}

TEST_F(ServerMetricsTest, StatusCodeNamesFollowGrpc) {
  EXPECT_STREQ(StatusCodeName(0), "OK");
  EXPECT_STREQ(StatusCodeName(3), "INVALID_ARGUMENT");
  EXPECT_STREQ(StatusCodeName(8), "RESOURCE_EXHAUSTED");
  EXPECT_STREQ(StatusCodeName(14), "UNAVAILABLE");
  EXPECT_STREQ(StatusCodeName(16), "UNAUTHENTICATED");
  EXPECT_STREQ(StatusCodeName(17), "UNKNOWN");
  EXPECT_STREQ(StatusCodeName(-1), "UNKNOWN");
}

TEST_F(ServerMetricsTest, RequestsCountByMethodAndCode) {
  for (int i = 0; i < 3; ++i) {
    metrics_.OnRequestStarted();
    metrics_.OnRequestFinished(Method::kApplyReLU, 0, 50e-6, 400, 400);
  }
  metrics_.OnRequestStarted();
  metrics_.OnRequestFinished(Method::kApplyReLU, 3, 5e-6, 16, 0);
  metrics_.OnRequestStarted();
  metrics_.OnRequestFinished(Method::kModelInfer, 8, 2.5, 0, 0);
  metrics_.OnRequestStarted();
  metrics_.OnRequestFinished(Method::kModelInfer, 99, 1e-3, 0, 0);

  EXPECT_EQ(CounterValue("relu_requests_total",
                         {{"method", "ApplyReLU"}, {"code", "OK"}}),
            3);
  EXPECT_EQ(CounterValue("relu_requests_total", {{"method", "ApplyReLU"},
                                                 {"code", "INVALID_ARGUMENT"}}),
            1);
  EXPECT_EQ(
      CounterValue("relu_requests_total",
                   {{"method", "ModelInfer"}, {"code", "RESOURCE_EXHAUSTED"}}),
      1);
  EXPECT_EQ(CounterValue("relu_requests_total",
                         {{"method", "ModelInfer"}, {"code", "UNKNOWN"}}),
            1);
  EXPECT_EQ(CounterValue("relu_requests_total",
                         {{"method", "ModelInfer"}, {"code", "OK"}}),
            0);
  EXPECT_EQ(CounterValue("relu_request_bytes_total"), 3 * 400 + 16);
  EXPECT_EQ(CounterValue("relu_response_bytes_total"), 3 * 400);
  EXPECT_EQ(Child("relu_inflight_requests").gauge.value, 0);

  const ClientMetric apply =
      Child("relu_request_duration_seconds", {{"method", "ApplyReLU"}});
  EXPECT_EQ(apply.histogram.sample_count, 4u);
  EXPECT_DOUBLE_EQ(apply.histogram.sample_sum, 3 * 50e-6 + 5e-6);
  // Microsecond resolution at the low end: 5 us and 50 us land apart.
  EXPECT_EQ(Bucket(apply, 1e-5), 1u);
  EXPECT_EQ(Bucket(apply, 2e-5), 1u);
  EXPECT_EQ(Bucket(apply, 5e-5), 4u);
  const ClientMetric infer =
      Child("relu_request_duration_seconds", {{"method", "ModelInfer"}});
  EXPECT_EQ(infer.histogram.sample_count, 2u);
  EXPECT_EQ(Bucket(infer, 1e-3), 1u);
  EXPECT_EQ(Bucket(infer, 2), 1u);
  EXPECT_EQ(Bucket(infer, 5), 2u);
}

TEST_F(ServerMetricsTest, InflightFollowsStartsAndFinishes) {
  metrics_.OnRequestStarted();
  metrics_.OnRequestStarted();
  EXPECT_EQ(Child("relu_inflight_requests").gauge.value, 2);
  metrics_.OnRequestFinished(Method::kApplyReLU, 0, 1e-4, 0, 0);
  EXPECT_EQ(Child("relu_inflight_requests").gauge.value, 1);
}

TEST_F(ServerMetricsTest, RequestDurationBucketsSpanTenMicrosToTenSeconds) {
  const ClientMetric metric =
      Child("relu_request_duration_seconds", {{"method", "ApplyReLU"}});
  const auto& buckets = metric.histogram.bucket;
  ASSERT_GE(buckets.size(), 3u);
  EXPECT_EQ(buckets.front().upper_bound, 1e-5);
  EXPECT_EQ(buckets[buckets.size() - 2].upper_bound, 10);
  EXPECT_TRUE(std::isinf(buckets.back().upper_bound));
}

TEST_F(ServerMetricsTest, ElementsByDtypeAndInvalid) {
  metrics_.OnElements(kernel::DType::kFloat32, 1000);
  metrics_.OnElements(kernel::DType::kFloat32, 24);
  metrics_.OnElements(kernel::DType::kBFloat16, 7);
  metrics_.OnElements(static_cast<kernel::DType>(0), 5);  // ignored
  metrics_.OnInvalid();
  metrics_.OnInvalid();
  EXPECT_EQ(CounterValue("relu_elements_total", {{"dtype", "float32"}}), 1024);
  EXPECT_EQ(CounterValue("relu_elements_total", {{"dtype", "bfloat16"}}), 7);
  EXPECT_EQ(CounterValue("relu_elements_total", {{"dtype", "float64"}}), 0);
  EXPECT_EQ(CounterValue("relu_elements_total", {{"dtype", "float16"}}), 0);
  EXPECT_EQ(CounterValue("relu_rejected_total", {{"reason", "invalid"}}), 2);
}

TEST_F(ServerMetricsTest, ObserverHooks) {
  batching::BatchObserver& observer = metrics_;
  observer.OnQueueChanged(3, 4096);
  EXPECT_EQ(Child("relu_queue_requests").gauge.value, 3);
  EXPECT_EQ(Child("relu_queue_bytes").gauge.value, 4096);
  observer.OnQueueChanged(0, 0);
  EXPECT_EQ(Child("relu_queue_requests").gauge.value, 0);

  observer.OnRejected(batching::RejectReason::kQueueFull);
  observer.OnRejected(batching::RejectReason::kQueueFull);
  observer.OnRejected(batching::RejectReason::kDeadline);
  observer.OnRejected(batching::RejectReason::kCancelled);
  observer.OnRejected(batching::RejectReason::kDraining);
  EXPECT_EQ(CounterValue("relu_rejected_total", {{"reason", "queue_full"}}), 2);
  EXPECT_EQ(CounterValue("relu_rejected_total", {{"reason", "deadline"}}), 1);
  EXPECT_EQ(CounterValue("relu_rejected_total", {{"reason", "cancelled"}}), 1);
  EXPECT_EQ(CounterValue("relu_rejected_total", {{"reason", "draining"}}), 1);
  EXPECT_EQ(CounterValue("relu_rejected_total", {{"reason", "invalid"}}), 0);

  observer.OnDequeued(0);
  observer.OnDequeued(3);
  observer.OnDequeued(1500);
  const ClientMetric queue = Child("relu_queue_duration_seconds");
  EXPECT_EQ(queue.histogram.sample_count, 3u);
  EXPECT_DOUBLE_EQ(queue.histogram.sample_sum, 1503e-6);
  EXPECT_EQ(Bucket(queue, 1e-6), 1u);
  EXPECT_EQ(Bucket(queue, 5e-6), 2u);
  EXPECT_EQ(Bucket(queue, 1e-3), 2u);
  EXPECT_EQ(Bucket(queue, 2e-3), 3u);

  observer.OnBatch(1, 100, batching::CloseReason::kIdle, 4);
  observer.OnBatch(64, 1 << 20, batching::CloseReason::kMaxRequests, 900);
  observer.OnBatch(5, 1 << 24, batching::CloseReason::kMaxElements, 20000);
  observer.OnBatch(3, 300, batching::CloseReason::kDelay, 10);
  EXPECT_EQ(CounterValue("relu_batch_close_total", {{"reason", "idle"}}), 1);
  EXPECT_EQ(
      CounterValue("relu_batch_close_total", {{"reason", "max_requests"}}), 1);
  EXPECT_EQ(
      CounterValue("relu_batch_close_total", {{"reason", "max_elements"}}), 1);
  EXPECT_EQ(CounterValue("relu_batch_close_total", {{"reason", "delay"}}), 1);

  const ClientMetric requests = Child("relu_batch_requests");
  EXPECT_EQ(requests.histogram.sample_count, 4u);
  EXPECT_EQ(requests.histogram.sample_sum, 1 + 64 + 5 + 3);
  EXPECT_EQ(Bucket(requests, 1), 1u);
  EXPECT_EQ(Bucket(requests, 4), 2u);
  EXPECT_EQ(Bucket(requests, 8), 3u);
  EXPECT_EQ(Bucket(requests, 32), 3u);
  EXPECT_EQ(Bucket(requests, 64), 4u);
  const ClientMetric elements = Child("relu_batch_elements");
  EXPECT_EQ(elements.histogram.sample_count, 4u);
  EXPECT_EQ(Bucket(elements, 128), 1u);
  EXPECT_EQ(Bucket(elements, 512), 2u);
  EXPECT_EQ(Bucket(elements, 1 << 20), 3u);
  EXPECT_EQ(Bucket(elements, 1 << 24), 4u);
  const ClientMetric kernel = Child("relu_kernel_duration_seconds");
  EXPECT_EQ(kernel.histogram.sample_count, 4u);
  EXPECT_DOUBLE_EQ(kernel.histogram.sample_sum, (4 + 900 + 20000 + 10) * 1e-6);
  EXPECT_EQ(Bucket(kernel, 5e-6), 1u);
  EXPECT_EQ(Bucket(kernel, 1e-5), 2u);
  EXPECT_EQ(Bucket(kernel, 1e-3), 3u);
  EXPECT_EQ(Bucket(kernel, 1e-2), 3u);
  // Whole microseconds land exactly on decimal bounds: 20000 us is le=0.02.
  EXPECT_EQ(Bucket(kernel, 2e-2), 4u);
}

// The hot path's counts live in per-thread shards until a scrape folds
// them in: threads racing each other and the scrapes lose nothing, and each
// scrape adds to what the last one folded.
TEST_F(ServerMetricsTest, ConcurrentCallsAndScrapesCountEveryCall) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < kCalls; ++i) {
        metrics_.OnRequestStarted();
        metrics_.OnBatch(1, 16, batching::CloseReason::kIdle, 3);
        metrics_.OnElements(kernel::DType::kFloat32, 16);
        // 0.5 s and 64 bytes: sums exact in binary whatever the order.
        metrics_.OnRequestFinished(Method::kModelInfer, 0, 0.5, 64, 64);
      }
    });
  }
  // Scrapes while the threads run.
  uint64_t seen = 0;
  for (int scrape = 0; scrape < 50; ++scrape) {
    const ClientMetric duration =
        Child("relu_request_duration_seconds", {{"method", "ModelInfer"}});
    EXPECT_GE(duration.histogram.sample_count, seen) << "went backwards";
    seen = duration.histogram.sample_count;
  }
  for (std::thread& thread : threads) thread.join();

  constexpr double kTotal = double{kThreads} * kCalls;
  EXPECT_EQ(CounterValue("relu_requests_total",
                         {{"method", "ModelInfer"}, {"code", "OK"}}),
            kTotal);
  const ClientMetric duration =
      Child("relu_request_duration_seconds", {{"method", "ModelInfer"}});
  EXPECT_EQ(duration.histogram.sample_count, kTotal);
  EXPECT_EQ(duration.histogram.sample_sum, 0.5 * kTotal);
  EXPECT_EQ(Bucket(duration, 0.5), kTotal);
  EXPECT_EQ(Bucket(duration, 0.2), 0u);
  EXPECT_EQ(CounterValue("relu_request_bytes_total"), 64 * kTotal);
  EXPECT_EQ(CounterValue("relu_response_bytes_total"), 64 * kTotal);
  EXPECT_EQ(CounterValue("relu_elements_total", {{"dtype", "float32"}}),
            16 * kTotal);
  EXPECT_EQ(CounterValue("relu_batch_close_total", {{"reason", "idle"}}),
            kTotal);
  const ClientMetric kernel = Child("relu_kernel_duration_seconds");
  EXPECT_EQ(kernel.histogram.sample_count, kTotal);
  EXPECT_EQ(Bucket(kernel, 5e-6), kTotal);
  EXPECT_EQ(Bucket(kernel, 2e-6), 0u);
  EXPECT_EQ(Child("relu_inflight_requests").gauge.value, 0);
  // A scrape with nothing new changes nothing.
  EXPECT_EQ(CounterValue("relu_requests_total",
                         {{"method", "ModelInfer"}, {"code", "OK"}}),
            kTotal);
}

TEST_F(ServerMetricsTest, BuildInfoIsOneWithLabels) {
  EXPECT_EQ(
      Child("relu_build_info", {{"version", "1.2.3"}, {"kernel_isa", "avx2"}})
          .gauge.value,
      1);
}

TEST(BucketsTest, DecadeBucketsAreOneTwoFive) {
  EXPECT_EQ(DecadeBuckets(1e-2, 1),
            (std::vector<double>{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}));
  EXPECT_EQ(DecadeBuckets(1e-5, 10).size(), 19u);
}

TEST(BucketsTest, PowerOfTwoBuckets) {
  EXPECT_EQ(PowerOfTwoBuckets(4), (std::vector<double>{1, 2, 4, 8, 16}));
}

}  // namespace
}  // namespace relu::metrics

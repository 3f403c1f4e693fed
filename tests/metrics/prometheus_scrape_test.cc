// A real Prometheus server scrapes MetricsHttpServer every second. After known
// observations, its query API must return exactly those counts, and every
// query of deploy/grafana/relu-serve.json must be accepted and find series.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "server/metrics/http_server.h"
#include "server/metrics/server_metrics.h"
#include "tests/metrics/dashboard.h"
#include "tests/metrics/prometheus_checks.h"
#include "tests/metrics/prometheus_process.h"
#include "tests/testing/subprocess.h"

namespace relu::metrics {
namespace {

using ::relu::testing::FindExecutable;
using testing::ExpectOneValue;
using testing::ExpectQueriesFindSeries;
using testing::PrometheusProcess;
using testing::UnixSeconds;

class PrometheusScrapeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string binary = FindExecutable("prometheus");
    if (binary.empty()) {
      GTEST_SKIP() << "prometheus not on PATH (Debian package `prometheus`): "
                      "the scrape was NOT tested";
    }
    server_ = std::make_unique<MetricsHttpServer>(
        "127.0.0.1:0", metrics_.registry(), [] { return true; });
    ASSERT_TRUE(server_->Start().ok());
    auto prometheus = PrometheusProcess::Start(
        binary, {"127.0.0.1:" + std::to_string(server_->port())});
    ASSERT_TRUE(prometheus.ok()) << prometheus.status();
    prometheus_ = std::move(*prometheus);
    // One scrape before any traffic, so rate() has two samples afterwards.
    ASSERT_TRUE(prometheus_->WaitForScrapeAfter(0)) << prometheus_->log();
  }

  double Value(const std::string& promql) {
    return ExpectOneValue(*prometheus_, promql);
  }

  // Known traffic: 7 OK and 3 INVALID_ARGUMENT ApplyReLU calls, 2
  // RESOURCE_EXHAUSTED ModelInfer calls, 2 batches.
  void SendTraffic() {
    for (int i = 0; i < 7; ++i) {
      metrics_.OnRequestStarted();
      metrics_.OnRequestFinished(Method::kApplyReLU, 0, 40e-6, 4096, 4096);
      metrics_.OnElements(kernel::DType::kFloat32, 1024);
    }
    for (int i = 0; i < 3; ++i) {
      metrics_.OnRequestStarted();
      metrics_.OnInvalid();
      metrics_.OnRequestFinished(Method::kApplyReLU, 3, 8e-6, 16, 0);
    }
    for (int i = 0; i < 2; ++i) {
      metrics_.OnRequestStarted();
      metrics_.OnRejected(batching::RejectReason::kQueueFull);
      metrics_.OnRequestFinished(Method::kModelInfer, 8, 3e-3, 64, 0);
    }
    metrics_.OnQueueChanged(2, 8192);
    for (int i = 0; i < 7; ++i) metrics_.OnDequeued(i * 10);
    metrics_.OnBatch(4, 4096, batching::CloseReason::kIdle, 25);
    metrics_.OnBatch(3, 3072, batching::CloseReason::kMaxRequests, 30);
    metrics_.OnQueueChanged(0, 0);
  }

  ServerMetrics metrics_{{"9.9.9", "scalar"}};
  std::unique_ptr<MetricsHttpServer> server_;
  std::unique_ptr<PrometheusProcess> prometheus_;
};

TEST_F(PrometheusScrapeTest, CountsAndHistogramsMatchTheTraffic) {
  SendTraffic();
  ASSERT_TRUE(prometheus_->WaitForScrapeAfter(UnixSeconds()))
      << prometheus_->log();

  const std::string job = "job=\"relu\"";
  EXPECT_EQ(Value("relu_requests_total{" + job +
                  ",method=\"ApplyReLU\",code=\"OK\"}"),
            7);
  EXPECT_EQ(Value("relu_requests_total{" + job +
                  ",method=\"ApplyReLU\",code=\"INVALID_ARGUMENT\"}"),
            3);
  EXPECT_EQ(Value("relu_requests_total{" + job +
                  ",method=\"ModelInfer\",code=\"RESOURCE_EXHAUSTED\"}"),
            2);
  EXPECT_EQ(Value("sum(relu_requests_total{" + job + "})"), 12);
  // 3 methods (ApplyReLU, ModelInfer, HttpInfer) x 17 codes.
  EXPECT_EQ(Value("count(relu_requests_total{" + job + "})"), 51);
  EXPECT_EQ(Value("relu_request_duration_seconds_count{" + job +
                  ",method=\"ApplyReLU\"}"),
            10);
  EXPECT_EQ(Value("relu_request_duration_seconds_bucket{" + job +
                  ",method=\"ApplyReLU\",le=\"1e-05\"}"),
            3);
  EXPECT_EQ(Value("relu_request_duration_seconds_bucket{" + job +
                  ",method=\"ApplyReLU\",le=\"5e-05\"}"),
            10);
  EXPECT_EQ(Value("relu_request_duration_seconds_count{" + job +
                  ",method=\"ModelInfer\"}"),
            2);
  EXPECT_EQ(Value("relu_rejected_total{" + job + ",reason=\"invalid\"}"), 3);
  EXPECT_EQ(Value("relu_rejected_total{" + job + ",reason=\"queue_full\"}"), 2);
  EXPECT_EQ(Value("relu_elements_total{" + job + ",dtype=\"float32\"}"),
            7 * 1024);
  EXPECT_EQ(Value("relu_request_bytes_total{" + job + "}"),
            7 * 4096 + 3 * 16 + 2 * 64);
  EXPECT_EQ(Value("relu_response_bytes_total{" + job + "}"), 7 * 4096);
  EXPECT_EQ(Value("relu_queue_duration_seconds_count{" + job + "}"), 7);
  EXPECT_EQ(Value("relu_batch_requests_count{" + job + "}"), 2);
  EXPECT_EQ(Value("relu_batch_requests_sum{" + job + "}"), 7);
  EXPECT_EQ(Value("relu_batch_elements_sum{" + job + "}"), 7 * 1024);
  EXPECT_EQ(Value("relu_kernel_duration_seconds_count{" + job + "}"), 2);
  EXPECT_EQ(Value("relu_batch_close_total{" + job + ",reason=\"idle\"}"), 1);
  EXPECT_EQ(Value("relu_inflight_requests{" + job + "}"), 0);
  EXPECT_EQ(Value("relu_queue_requests{" + job + "}"), 0);
  EXPECT_EQ(Value("relu_build_info{" + job +
                  ",version=\"9.9.9\",kernel_isa=\"scalar\"}"),
            1);
  EXPECT_GT(Value("process_open_fds{" + job + "}"), 0);
  EXPECT_GT(Value("process_max_fds{" + job + "}"), 0);
  EXPECT_GT(Value("process_resident_memory_bytes{" + job + "}"), 0);
  const double start = Value("process_start_time_seconds{" + job + "}");
  EXPECT_LE(start, UnixSeconds());
  EXPECT_GT(start, UnixSeconds() - 86400);
  EXPECT_GE(Value("process_cpu_seconds_total{" + job + "}"), 0);
}

TEST_F(PrometheusScrapeTest, DashboardQueriesAreAcceptedAndFindSeries) {
  auto queries = testing::DashboardQueries(RELU_DASHBOARD_PATH);
  ASSERT_TRUE(queries.ok()) << queries.status();
  ASSERT_GE(queries->size(), 10u);
  SendTraffic();
  ASSERT_TRUE(prometheus_->WaitForScrapeAfter(UnixSeconds()))
      << prometheus_->log();
  ExpectQueriesFindSeries(*prometheus_, *queries);
}

}  // namespace
}  // namespace relu::metrics

// A real Prometheus scrapes the real relu-server (child process). After 7 OK
// and 3 INVALID_ARGUMENT calls, its query API must return exactly those counts
// by code, histogram _counts that match, and accept every dashboard query.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "relu/v1/relu.grpc.pb.h"
#include "tests/metrics/dashboard.h"
#include "tests/metrics/prometheus_checks.h"
#include "tests/metrics/prometheus_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace relu {
namespace {

using metrics::testing::ExpectOneValue;
using metrics::testing::ExpectQueriesFindSeries;
using metrics::testing::PrometheusProcess;
using metrics::testing::UnixSeconds;
using testing::FindExecutable;
using testing::HttpRequest;
using testing::ServerProcess;

constexpr int kElements = 1000;

constexpr int kOkCalls = 7;
constexpr int kInvalidCalls = 3;

v1::ApplyReLURequest Request(double max_value) {
  std::vector<float> values(kElements);
  for (int i = 0; i < kElements; ++i) values[i] = static_cast<float>(i - 500);
  v1::ApplyReLURequest request;
  request.mutable_tensor()->set_dtype(v1::DATA_TYPE_FLOAT32);
  request.mutable_tensor()->add_shape(kElements);
  request.mutable_tensor()->set_data(values.data(),
                                     values.size() * sizeof(float));
  request.mutable_params()->set_max_value(max_value);
  return request;
}

class ReluServerPrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string binary = FindExecutable("prometheus");
    if (binary.empty()) {
      GTEST_SKIP() << "prometheus not on PATH (Debian package `prometheus`): "
                      "the server's metrics were NOT scraped";
    }
    server_ = ServerProcess::Start();
    ASSERT_NE(server_, nullptr);
    metrics_port_ = server_->metrics_port();
    ASSERT_GT(metrics_port_, 0)
        << "relu-server did not log \"metrics listening on <ip>:<port>\"; "
           "its log:\n"
        << server_->log();
    auto prometheus = PrometheusProcess::Start(
        binary, {"127.0.0.1:" + std::to_string(metrics_port_)});
    ASSERT_TRUE(prometheus.ok()) << prometheus.status();
    prometheus_ = std::move(*prometheus);
    ASSERT_TRUE(prometheus_->WaitForScrapeAfter(0))
        << prometheus_->log() << "\nserver log:\n"
        << server_->log();
  }

  void TearDown() override {
    if (server_ != nullptr) {
      server_->Signal(SIGTERM);
      EXPECT_EQ(server_->Wait(), 0) << server_->log();
    }
  }

  // Sends the known traffic, each call answered before the next; returns the
  // mean client round trip in microseconds.
  double SendCalls() {
    auto stub = v1::ReluService::NewStub(grpc::CreateChannel(
        server_->target(), grpc::InsecureChannelCredentials()));
    const auto ok_request = Request(100);
    const auto invalid_request = Request(-1);  // negative max_value
    double micros = 0;
    for (int i = 0; i < kOkCalls + kInvalidCalls; ++i) {
      const bool ok = i < kOkCalls;
      grpc::ClientContext context;
      v1::ApplyReLUResponse response;
      const auto start = std::chrono::steady_clock::now();
      const grpc::Status status = stub->ApplyReLU(
          &context, ok ? ok_request : invalid_request, &response);
      micros += std::chrono::duration<double, std::micro>(
                    std::chrono::steady_clock::now() - start)
                    .count();
      EXPECT_EQ(status.error_code(),
                ok ? grpc::StatusCode::OK : grpc::StatusCode::INVALID_ARGUMENT)
          << status.error_message();
    }
    return micros / (kOkCalls + kInvalidCalls);
  }

  double Value(const std::string& promql) {
    return ExpectOneValue(*prometheus_, promql);
  }

  std::unique_ptr<ServerProcess> server_;
  int metrics_port_ = -1;
  std::unique_ptr<PrometheusProcess> prometheus_;
};

TEST_F(ReluServerPrometheusTest, ProbesAnswer) {
  auto healthz = HttpRequest(metrics_port_, "/healthz");
  ASSERT_TRUE(healthz.ok()) << healthz.status();
  EXPECT_EQ(healthz->status, 200);
  auto readyz = HttpRequest(metrics_port_, "/readyz");
  ASSERT_TRUE(readyz.ok()) << readyz.status();
  EXPECT_EQ(readyz->status, 200);
  EXPECT_EQ(Value("up{job=\"relu\"}"), 1);
}

TEST_F(ReluServerPrometheusTest, CountsByCodeAndHistogramCountsMatch) {
  const double round_trip_micros = SendCalls();
  ASSERT_TRUE(prometheus_->WaitForScrapeAfter(UnixSeconds()))
      << prometheus_->log();

  const std::string apply = "job=\"relu\",method=\"ApplyReLU\"";
  EXPECT_EQ(Value("relu_requests_total{" + apply + ",code=\"OK\"}"), kOkCalls);
  EXPECT_EQ(
      Value("relu_requests_total{" + apply + ",code=\"INVALID_ARGUMENT\"}"),
      kInvalidCalls);
  EXPECT_EQ(Value("sum(relu_requests_total{job=\"relu\"})"),
            kOkCalls + kInvalidCalls);
  EXPECT_EQ(Value("sum(relu_request_duration_seconds_count{job=\"relu\"})"),
            kOkCalls + kInvalidCalls);
  EXPECT_EQ(Value("relu_rejected_total{job=\"relu\",reason=\"invalid\"}"),
            kInvalidCalls);
  EXPECT_EQ(Value("sum(relu_rejected_total{job=\"relu\",reason!=\"invalid\"})"),
            0);
  // Only valid calls reach the batcher.
  EXPECT_EQ(Value("relu_queue_duration_seconds_count{job=\"relu\"}"), kOkCalls);
  EXPECT_EQ(Value("relu_batch_requests_sum{job=\"relu\"}"), kOkCalls);
  EXPECT_EQ(Value("relu_batch_elements_sum{job=\"relu\"}"),
            kOkCalls * kElements);
  const double batches = Value("relu_batch_requests_count{job=\"relu\"}");
  EXPECT_GE(batches, 1);
  EXPECT_LE(batches, kOkCalls);
  EXPECT_EQ(Value("relu_kernel_duration_seconds_count{job=\"relu\"}"), batches);
  EXPECT_EQ(Value("sum(relu_batch_close_total{job=\"relu\"})"), batches);
  EXPECT_EQ(Value("relu_elements_total{job=\"relu\",dtype=\"float32\"}"),
            kOkCalls * kElements);
  EXPECT_EQ(Value("relu_response_bytes_total{job=\"relu\"}"),
            kOkCalls * kElements * 4);
  EXPECT_GE(Value("relu_request_bytes_total{job=\"relu\"}"),
            kOkCalls * kElements * 4);
  EXPECT_EQ(Value("relu_inflight_requests{job=\"relu\"}"), 0);
  EXPECT_EQ(Value("relu_queue_requests{job=\"relu\"}"), 0);
  EXPECT_EQ(Value("relu_queue_bytes{job=\"relu\"}"), 0);
  EXPECT_EQ(Value("count(relu_build_info{job=\"relu\",kernel_isa=~\"scalar|"
                  "avx2|avx512\"} == 1)"),
            1);
  EXPECT_GT(Value("process_resident_memory_bytes{job=\"relu\"}"), 0);
  EXPECT_GT(Value("process_open_fds{job=\"relu\"}"), 0);

  const double server_micros =
      1e6 *
      Value("sum(relu_request_duration_seconds_sum{" + apply +
            "}) / sum(relu_request_duration_seconds_count{" + apply + "})");
  std::printf(
      "mean over the %d calls: %.1f us client round trip, %.1f us server "
      "time\n",
      kOkCalls + kInvalidCalls, round_trip_micros, server_micros);
}

TEST_F(ReluServerPrometheusTest, DashboardQueriesAreAcceptedAndFindSeries) {
  auto queries = metrics::testing::DashboardQueries(RELU_DASHBOARD_PATH);
  ASSERT_TRUE(queries.ok()) << queries.status();
  SendCalls();
  ASSERT_TRUE(prometheus_->WaitForScrapeAfter(UnixSeconds()))
      << prometheus_->log();
  ExpectQueriesFindSeries(*prometheus_, *queries);
}

}  // namespace
}  // namespace relu

// MetricsHttpServer on 127.0.0.1:0: the three paths, errors, and promtool's
// lint of the served exposition.
#include "server/metrics/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

#include "server/metrics/server_metrics.h"
#include "tests/testing/http_client.h"
#include "tests/testing/subprocess.h"

namespace relu::metrics {
namespace {

using ::relu::testing::FindExecutable;
using ::relu::testing::HttpRequest;
using ::relu::testing::HttpResponse;

class MetricsHttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<MetricsHttpServer>(
        "127.0.0.1:0", metrics_.registry(), [this] { return ready_.load(); });
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }

  HttpResponse Get(const std::string& path, const std::string& method = "GET") {
    auto response = HttpRequest(server_->port(), path, method);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : HttpResponse{};
  }

  ServerMetrics metrics_{{"0.1.0", "scalar"}};
  std::atomic<bool> ready_{false};
  std::unique_ptr<MetricsHttpServer> server_;
};

TEST_F(MetricsHttpServerTest, ServesMetricsInTextFormat) {
  metrics_.OnRequestStarted();
  metrics_.OnRequestFinished(Method::kApplyReLU, 3, 1e-4, 8, 0);
  const auto response = Get("/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_NE(response.headers.find(
                "Content-Type: text/plain; version=0.0.4; charset=utf-8"),
            std::string::npos)
      << response.headers;
  const std::string& body = response.body;
  EXPECT_NE(body.find("# TYPE relu_requests_total counter"), std::string::npos);
  // prometheus-cpp sorts labels by name.
  EXPECT_NE(body.find("relu_requests_total{code=\"INVALID_ARGUMENT\","
                      "method=\"ApplyReLU\"} 1"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("relu_request_duration_seconds_count{method="
                      "\"ApplyReLU\"} 1"),
            std::string::npos);
  EXPECT_NE(body.find("relu_build_info{kernel_isa=\"scalar\",version="
                      "\"0.1.0\"} 1"),
            std::string::npos);
  for (const char* name :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
        "process_start_time_seconds ", "process_open_fds ",
        "process_max_fds "}) {
    EXPECT_NE(body.find(std::string("\n") + name), std::string::npos) << name;
  }
}

TEST_F(MetricsHttpServerTest, HealthzIsAlwaysOk) {
  EXPECT_EQ(Get("/healthz").status, 200);
  ready_ = true;
  EXPECT_EQ(Get("/healthz").status, 200);
}

TEST_F(MetricsHttpServerTest, ReadyzFollowsTheCallback) {
  EXPECT_EQ(Get("/readyz").status, 503);
  ready_ = true;
  EXPECT_EQ(Get("/readyz").status, 200);
  ready_ = false;
  EXPECT_EQ(Get("/readyz").status, 503);
}

TEST_F(MetricsHttpServerTest, HeadHasNoBody) {
  const auto response = Get("/metrics", "HEAD");
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(response.body.empty());
}

TEST_F(MetricsHttpServerTest, OtherMethodsAndPathsAreRefused) {
  EXPECT_EQ(Get("/metrics", "POST").status, 405);
  EXPECT_EQ(Get("/").status, 404);
  EXPECT_EQ(Get("/nothing").status, 404);
}

TEST_F(MetricsHttpServerTest, AddressInUseIsAnError) {
  MetricsHttpServer second("127.0.0.1:" + std::to_string(server_->port()),
                           metrics_.registry(), [] { return true; });
  const absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(second.port(), 0);
}

TEST_F(MetricsHttpServerTest, StartTwiceIsAnError) {
  EXPECT_EQ(server_->Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(MetricsHttpServerAddressTest, MalformedAddressIsInvalidArgument) {
  for (const char* address : {"", "9464", "127.0.0.1:", "127.0.0.1:x"}) {
    MetricsHttpServer server(address, nullptr, [] { return true; });
    EXPECT_EQ(server.Start().code(), absl::StatusCode::kInvalidArgument)
        << address;
  }
}

// promtool exits 0 when clean, 3 on lint problems, 1 on parse errors, and
// prints each problem.
TEST_F(MetricsHttpServerTest, PromtoolFindsNoProblems) {
  const std::string promtool = FindExecutable("promtool");
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool not on PATH (Debian package `prometheus`): "
                    "the exposition was NOT linted";
  }
  // Exercise every family so no histogram or label set is empty.
  metrics_.OnRequestStarted();
  metrics_.OnRequestFinished(Method::kModelInfer, 0, 2e-3, 100, 100);
  metrics_.OnElements(kernel::DType::kFloat16, 50);
  metrics_.OnInvalid();
  metrics_.OnQueueChanged(1, 100);
  metrics_.OnRejected(batching::RejectReason::kDeadline);
  metrics_.OnDequeued(12);
  metrics_.OnBatch(1, 50, batching::CloseReason::kIdle, 3);
  const auto response = Get("/metrics");
  ASSERT_EQ(response.status, 200);

  const relu::testing::ProcessResult promtool_run =
      relu::testing::RunProcess({promtool, "check", "metrics"}, response.body);
  const std::string output = promtool_run.out + promtool_run.err;
  ASSERT_GE(promtool_run.exit_code, 0) << "could not run " << promtool;
  ASSERT_LT(promtool_run.exit_code, 128) << "promtool was killed: " << output;
  EXPECT_EQ(promtool_run.exit_code, 0) << output;
  EXPECT_EQ(output, "") << "promtool reported:\n" << output;
}

}  // namespace
}  // namespace relu::metrics

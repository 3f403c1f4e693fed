// Scale-out on one machine, the way a cluster runs relu-serve: three real
// relu-server processes on three loopback ports behind one client channel
// that balances with round_robin over a static address list (in a cluster the
// list comes from dns:///relu-headless...). Under a steady load:
//   1. every replica serves calls (the client sees each one as the peer, and
//      each server's relu_requests_total counts them);
//   2. one replica gets SIGTERM mid-load, drains and exits 0, and no call
//      fails: the client's health checking moves traffic off it when it turns
//      NOT_SERVING, and the retry policy resends the few calls it refuses
//      with UNAVAILABLE while draining;
//   3. the replica starts again on the same port and gets traffic again.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "relu/v1/relu.grpc.pb.h"
#include "tests/testing/http_client.h"
#include "tests/testing/server_process.h"

namespace relu {
namespace {

using ::relu::testing::HttpRequest;
using ::relu::testing::ServerProcess;

constexpr int kReplicas = 3;
constexpr int kLoadThreads = 4;
// Calls each phase waits to see on a replica before moving on.
constexpr int64_t kCallsPerPhase = 1000;

// What a client of relu-headless should use: round_robin over every address,
// client-side health checking of the API's health service (a draining
// replica turns NOT_SERVING and leaves the pick list at once), and retries
// of UNAVAILABLE for the calls a replica refuses while it drains. Only
// UNAVAILABLE: a call that gRPC's own shutdown cuts fails CANCELLED, which is
// not retried, so this test also checks that relu-server waits for a quiet
// window before it shuts its listener down (before it did, about 1 run in 4
// lost one call here).
constexpr char kServiceConfig[] = R"({
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": "relu.v1.ReluService"},
  "methodConfig": [{
    "name": [{"service": "relu.v1.ReluService"}],
    "waitForReady": true,
    "timeout": "30s",
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.01s",
      "maxBackoff": "0.2s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
})";

// Sum of every relu_requests_total sample of a Prometheus text exposition.
double RequestsTotal(const std::string& exposition) {
  double total = 0;
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("relu_requests_total", 0) != 0) continue;
    total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

// Several threads calling ApplyReLU in a loop over one channel, counting
// answers per peer and keeping every failure.
class Load {
 public:
  explicit Load(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::ReluService::NewStub(channel)) {
    for (int i = 0; i < kLoadThreads; ++i) {
      threads_.emplace_back([this] { Run(); });
    }
  }
  ~Load() { Stop(); }

  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  // Calls answered by "ipv4:127.0.0.1:`port`" so far.
  int64_t CallsTo(int port) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_by_peer_["ipv4:127.0.0.1:" + std::to_string(port)];
  }
  int64_t calls() const { return calls_; }
  std::vector<std::string> failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }
  std::map<std::string, int64_t> calls_by_peer() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_by_peer_;
  }

 private:
  void Run() {
    // ReLU with max_value 2 of [-1.5, 0.5, 3]: [0, 0.5, 2].
    const float input[] = {-1.5f, 0.5f, 3.0f};
    const float expected[] = {0.0f, 0.5f, 2.0f};
    v1::ApplyReLURequest request;
    request.mutable_tensor()->set_dtype(v1::DATA_TYPE_FLOAT32);
    request.mutable_tensor()->add_shape(3);
    request.mutable_tensor()->set_data(input, sizeof(input));
    request.mutable_params()->set_max_value(2.0);
    while (!stop_) {
      grpc::ClientContext context;
      v1::ApplyReLUResponse response;
      grpc::Status status = stub_->ApplyReLU(&context, request, &response);
      std::string problem;
      if (!status.ok()) {
        problem = "status " + std::to_string(status.error_code()) + ": " +
                  status.error_message();
      } else if (response.tensor().data().size() != sizeof(expected) ||
                 memcmp(response.tensor().data().data(), expected,
                        sizeof(expected)) != 0) {
        problem = "wrong result";
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (problem.empty()) {
        ++calls_by_peer_[context.peer()];
        ++calls_;
      } else {
        failures_.push_back(context.peer() + ": " + problem);
      }
    }
  }

  std::unique_ptr<v1::ReluService::Stub> stub_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> calls_{0};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::map<std::string, int64_t> calls_by_peer_;  // guarded by mu_
  std::vector<std::string> failures_;             // guarded by mu_
};

// Polls until `condition` holds. No time limit of its own: ctest's TIMEOUT
// ends a run that never gets there.
template <typename Condition>
void WaitUntil(Condition condition) {
  while (!condition()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

class ScaleOutTest : public ::testing::Test {
 protected:
  std::unique_ptr<ServerProcess> StartReplica(int port = 0) {
    return ServerProcess::Start(
        {"--grpc-address=127.0.0.1:" + std::to_string(port),
         "--drain-timeout-s=10", "--kernel-threads=1"});
  }

  // Checks that the replica's own metrics count the calls it served.
  void ExpectMetricsCount(ServerProcess& replica, const std::string& when) {
    if (replica.metrics_port() < 0) {
      ADD_FAILURE() << when << ": replica " << replica.target()
                    << " logged no metrics listener, so its metrics cannot "
                       "show that it served";
      return;
    }
    const auto metrics = HttpRequest(replica.metrics_port(), "/metrics");
    ASSERT_TRUE(metrics.ok())
        << when << ": GET /metrics of " << replica.target()
        << " failed: " << metrics.status();
    ASSERT_EQ(metrics->status, 200)
        << when << ": GET /metrics of " << replica.target() << " failed";
    EXPECT_GT(RequestsTotal(metrics->body), 0)
        << when << ": relu_requests_total of " << replica.target()
        << " is zero";
  }
};

TEST_F(ScaleOutTest, RoundRobinSpreadsDrainsWithoutErrorsAndRejoins) {
  std::vector<std::unique_ptr<ServerProcess>> replicas;
  std::vector<int> ports;
  std::string target = "ipv4:";
  for (int i = 0; i < kReplicas; ++i) {
    replicas.push_back(StartReplica());
    ASSERT_NE(replicas.back(), nullptr);
    ports.push_back(replicas.back()->grpc_port());
    target += (i ? "," : "") + replicas.back()->target();
  }

  {
    grpc::ChannelArguments arguments;
    arguments.SetServiceConfigJSON(kServiceConfig);
    // Reconnect to a restarted replica within a second (the default backoff
    // grows to two minutes).
    arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    auto channel = grpc::CreateCustomChannel(
        target, grpc::InsecureChannelCredentials(), arguments);
    Load load(channel);

    // 1. Every replica serves.
    WaitUntil([&] {
      for (int port : ports) {
        if (load.CallsTo(port) < kCallsPerPhase) return false;
      }
      return true;
    });
    std::printf("all %d replicas served %lld calls each after %lld calls\n",
                kReplicas, static_cast<long long>(kCallsPerPhase),
                static_cast<long long>(load.calls()));
    for (auto& replica : replicas) ExpectMetricsCount(*replica, "all up");

    // 2. SIGTERM one mid-load: it drains and exits 0; the others carry on.
    ServerProcess& leaving = *replicas[1];
    const auto sigterm_time = std::chrono::steady_clock::now();
    leaving.Signal(SIGTERM);
    EXPECT_EQ(leaving.Wait(), 0) << leaving.log();
    std::printf("replica %s exited %.1f s after SIGTERM (%lld calls so far)\n",
                leaving.target().c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                              sigterm_time)
                    .count(),
                static_cast<long long>(load.calls()));
    const int64_t served_before_exit = load.CallsTo(ports[1]);
    const int64_t others_before =
        load.CallsTo(ports[0]) + load.CallsTo(ports[2]);
    WaitUntil([&] {
      return load.CallsTo(ports[0]) + load.CallsTo(ports[2]) >=
             others_before + 2 * kCallsPerPhase;
    });
    EXPECT_EQ(load.CallsTo(ports[1]), served_before_exit);
    EXPECT_NE(leaving.log().find("drained; exiting"), std::string::npos)
        << leaving.log();

    // 3. It starts again on its port and gets traffic again.
    replicas[1] = StartReplica(ports[1]);
    ASSERT_NE(replicas[1], nullptr);
    WaitUntil([&] {
      return load.CallsTo(ports[1]) >= served_before_exit + kCallsPerPhase;
    });
    ExpectMetricsCount(*replicas[1], "restarted");

    load.Stop();
    std::vector<std::string> failures = load.failures();
    EXPECT_TRUE(failures.empty())
        << failures.size() << " of " << load.calls() + failures.size()
        << " calls failed; the first: " << failures.front();
    for (const auto& [peer, calls] : load.calls_by_peer()) {
      std::printf("%s served %lld calls\n", peer.c_str(),
                  static_cast<long long>(calls));
    }

  }  // The client's connections close here.

  for (auto& replica : replicas) replica->Signal(SIGTERM);
  for (auto& replica : replicas) {
    EXPECT_EQ(replica->Wait(), 0) << replica->log();
  }
}

}  // namespace
}  // namespace relu

// The client's retry policy against an in-process fake ReluService that
// answers UNAVAILABLE a set number of times before echoing the tensor.
#include <atomic>
#include <memory>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "relu/client.h"
#include "relu/v1/relu.grpc.pb.h"

namespace relu {
namespace {

class FlakyService final : public v1::ReluService::Service {
 public:
  explicit FlakyService(int failures) : failures_(failures) {}

  grpc::Status ApplyReLU(grpc::ServerContext*,
                         const v1::ApplyReLURequest* request,
                         v1::ApplyReLUResponse* response) override {
    if (attempts_.fetch_add(1) < failures_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "try again");
    }
    *response->mutable_tensor() = request->tensor();
    return grpc::Status::OK;
  }
  int attempts() const { return attempts_.load(); }

 private:
  const int failures_;
  std::atomic<int> attempts_{0};
};

class RetryTest : public ::testing::Test {
 protected:
  void Start(int failures) {
    service_ = std::make_unique<FlakyService>(failures);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.SetMaxReceiveMessageSize(64 << 20);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  static ClientOptions FastBackoff() {
    ClientOptions o;
    o.initial_backoff = std::chrono::milliseconds(1);
    o.max_backoff = std::chrono::milliseconds(5);
    return o;
  }

  std::unique_ptr<FlakyService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(RetryTest, UnavailableIsRetried) {
  Start(/*failures=*/3);
  Client client(target(), FastBackoff());
  absl::StatusOr<std::vector<float>> y = client.Apply(std::vector<float>{1, 2});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(*y, (std::vector<float>{1, 2}));
  EXPECT_EQ(service_->attempts(), 4);  // the default max_attempts
}

TEST_F(RetryTest, GivesUpAfterMaxAttempts) {
  Start(/*failures=*/10);
  Client client(target(), FastBackoff());
  absl::StatusOr<std::vector<float>> y = client.Apply(std::vector<float>{1});
  EXPECT_EQ(y.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(y.status().message(), "try again");
  EXPECT_EQ(service_->attempts(), 4);
}

TEST_F(RetryTest, NoRetriesWhenDisabled) {
  Start(/*failures=*/1);
  ClientOptions options = FastBackoff();
  options.max_attempts = 1;
  Client client(target(), options);
  EXPECT_EQ(client.Apply(std::vector<float>{1}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_->attempts(), 1);
}

// A 16 MiB tensor still fits the retry buffer (gRPC's default of 256 KiB
// would not retry it).
TEST_F(RetryTest, SixteenMiBCallIsRetried) {
  Start(/*failures=*/1);
  Client client(target(), FastBackoff());
  std::vector<float> x((16 << 20) / sizeof(float), -1.0f);
  absl::StatusOr<std::vector<float>> y = client.Apply(x);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->size(), x.size());
  EXPECT_EQ(service_->attempts(), 2);
}

TEST_F(RetryTest, SmallRetryBufferDoesNotRetryLargeCalls) {
  Start(/*failures=*/1);
  ClientOptions options = FastBackoff();
  options.retry_buffer_bytes = 256 << 10;
  Client client(target(), options);
  std::vector<float> x((1 << 20) / sizeof(float), -1.0f);
  EXPECT_EQ(client.Apply(x).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_->attempts(), 1);
}

// Two in-process servers on loopback, one service each; shut down when
// destroyed.
class TwoServers {
 public:
  TwoServers(FlakyService* a, FlakyService* b) {
    for (FlakyService* service : {a, b}) {
      grpc::ServerBuilder builder;
      builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                               &ports_[servers_.size()]);
      builder.RegisterService(service);
      servers_.push_back(builder.BuildAndStart());
      EXPECT_NE(servers_.back(), nullptr);
    }
  }
  ~TwoServers() {
    for (auto& server : servers_) server->Shutdown();
  }
  grpc::Server& server(int i) { return *servers_[i]; }
  // "ipv4:127.0.0.1:A,127.0.0.1:B".
  std::string target() const {
    return "ipv4:127.0.0.1:" + std::to_string(ports_[0]) +
           ",127.0.0.1:" + std::to_string(ports_[1]);
  }

 private:
  std::vector<std::unique_ptr<grpc::Server>> servers_;
  int ports_[2] = {0, 0};
};

// Calls to a target with two addresses: returns how many each server got.
std::pair<int, int> SpreadOfCalls(const ClientOptions& options, int calls) {
  FlakyService a(0), b(0);
  TwoServers servers(&a, &b);
  {
    Client client(servers.target(), options);
    for (int i = 0; i < calls && (a.attempts() < 5 || b.attempts() < 5); ++i) {
      EXPECT_TRUE(client.Apply(std::vector<float>{1}).ok());
    }
  }
  return {a.attempts(), b.attempts()};
}

// The default round_robin policy sends calls to both addresses.
TEST(LoadBalancingTest, RoundRobinSpreadsCalls) {
  const auto [a, b] = SpreadOfCalls(ClientOptions{}, 2000);
  EXPECT_GE(a, 5);
  EXPECT_GE(b, 5);
}

// Control: pick_first keeps to one address.
TEST(LoadBalancingTest, PickFirstUsesOneAddress) {
  ClientOptions options;
  options.lb_policy = "pick_first";
  const auto [a, b] = SpreadOfCalls(options, 200);
  EXPECT_EQ(a + b, 200);
  EXPECT_TRUE(a == 0 || b == 0) << a << " " << b;
}

// Two servers with a health service, the second NOT_SERVING
// relu.v1.ReluService (as a draining relu-server is): returns how many of
// `calls` calls each got.
std::pair<int, int> CallsWithOneServerNotServing(const ClientOptions& options,
                                                 int calls) {
  FlakyService serving(0), draining(0);
  grpc::EnableDefaultHealthCheckService(true);
  TwoServers servers(&serving, &draining);
  grpc::EnableDefaultHealthCheckService(false);
  servers.server(0).GetHealthCheckService()->SetServingStatus(
      "relu.v1.ReluService", true);
  servers.server(1).GetHealthCheckService()->SetServingStatus(
      "relu.v1.ReluService", false);
  {
    Client client(servers.target(), options);
    for (int i = 0; i < calls; ++i) {
      EXPECT_TRUE(client.Apply(std::vector<float>{1}).ok());
    }
  }
  return {serving.attempts(), draining.attempts()};
}

// By default the client checks relu.v1.ReluService's health on every address
// and sends nothing to one that is not SERVING.
TEST(HealthCheckingTest, NotServingAddressGetsNoCalls) {
  const auto [serving, draining] =
      CallsWithOneServerNotServing(ClientOptions{}, 200);
  EXPECT_EQ(serving, 200);
  EXPECT_EQ(draining, 0);
}

// Control: with health checking off, round_robin uses both.
TEST(HealthCheckingTest, WithoutHealthCheckingBothGetCalls) {
  ClientOptions options;
  options.health_check_service = "";
  const auto [serving, draining] = CallsWithOneServerNotServing(options, 200);
  EXPECT_GT(serving, 0);
  EXPECT_GT(draining, 0);
}

}  // namespace
}  // namespace relu

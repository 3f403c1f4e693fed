// The real relu-server binary: start, call, SIGTERM under load, exit codes.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "relu/v1/relu.grpc.pb.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace relu {
namespace {

using ::relu::testing::ServerProcess;
using ::testing::HasSubstr;

v1::ApplyReLURequest FloatRequest(const std::vector<float>& values) {
  v1::ApplyReLURequest request;
  request.mutable_tensor()->set_dtype(v1::DATA_TYPE_FLOAT32);
  request.mutable_tensor()->add_shape(static_cast<int64_t>(values.size()));
  request.mutable_tensor()->set_data(values.data(),
                                     values.size() * sizeof(float));
  return request;
}

std::vector<float> Values(const v1::ApplyReLUResponse& response) {
  const std::string& data = response.tensor().data();
  std::vector<float> values(data.size() / sizeof(float));
  memcpy(values.data(), data.data(), data.size());
  return values;
}

// Runs relu-server with `args` (and only `env` in its environment) to
// completion; returns its exit code and everything it printed.
int RunServer(const std::vector<std::string>& args, std::string* output,
              const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv = {relu::testing::ServerBinaryPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  relu::testing::ProcessResult result =
      relu::testing::RunProcess(argv, "", env);
  *output = result.out + result.err;
  return result.exit_code;
}

TEST(ServerE2eTest, AnswersTheTutorialExample) {
  auto server = ServerProcess::Start({"--log-level=debug"});
  ASSERT_NE(server, nullptr);
  auto stub = v1::ReluService::NewStub(grpc::CreateChannel(
      server->target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::ApplyReLUResponse response;
  auto request = FloatRequest({-10, -5, 0, 5, 10});
  request.mutable_params()->set_max_value(5);
  ASSERT_TRUE(stub->ApplyReLU(&context, request, &response).ok());
  EXPECT_THAT(Values(response), ::testing::ElementsAre(0, 0, 0, 5, 5));
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0);
  EXPECT_THAT(server->log(), HasSubstr("kernel path"));
}

TEST(ServerE2eTest, SigtermUnderLoadAnswersEveryAcceptedCallAndExitsZero) {
  auto server = ServerProcess::Start({"--drain-timeout-s=30"});
  ASSERT_NE(server, nullptr);
  auto channel =
      grpc::CreateChannel(server->target(), grpc::InsecureChannelCredentials());
  auto stub = v1::ReluService::NewStub(channel);

  constexpr int kCallers = 16;
  std::vector<float> input(64 * 1024);
  for (size_t i = 0; i < input.size(); ++i) input[i] = i % 3 ? -1.0f : 2.0f;
  const auto request = FloatRequest(input);
  std::atomic<int> ok{0}, refused{0}, wrong{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, int> other;  // status code name -> count
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&] {
      while (!stop.load()) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(60));
        v1::ApplyReLUResponse response;
        grpc::Status status = stub->ApplyReLU(&context, request, &response);
        if (status.ok()) {
          auto values = Values(response);
          bool same = values.size() == input.size();
          for (size_t i = 0; same && i < values.size(); ++i) {
            same = values[i] == (input[i] > 0 ? input[i] : 0.0f);
          }
          (same ? ok : wrong)++;
        } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
          // Refused (draining, or the listener has closed): not accepted.
          ++refused;
          return;
        } else {
          std::lock_guard<std::mutex> lock(mu);
          other[std::to_string(status.error_code()) + ": " +
                status.error_message()]++;
        }
      }
    });
  }
  // Let load build up, then terminate while calls are in flight.
  while (ok.load() < 200) std::this_thread::yield();
  server->Signal(SIGTERM);
  const int exit_code = server->Wait();
  stop = true;
  for (auto& caller : callers) caller.join();

  EXPECT_EQ(exit_code, 0) << server->log();
  EXPECT_GE(ok.load(), 200);
  EXPECT_EQ(wrong.load(), 0);
  for (const auto& [status, count] : other) {
    ADD_FAILURE() << count << " calls failed with " << status;
  }
  EXPECT_THAT(server->log(), HasSubstr("drained"));
}

TEST(ServerE2eTest, BadFlagExitsTwoWithOneClearLine) {
  std::string output;
  EXPECT_EQ(RunServer({"--max-batch-requests=0"}, &output), 2);
  EXPECT_THAT(output, HasSubstr("--max-batch-requests"));
  output.clear();
  EXPECT_EQ(RunServer({"--log-format=xml"}, &output), 2);
  EXPECT_THAT(output, HasSubstr("--log-format"));
}

TEST(ServerE2eTest, EnvironmentVariablesSetFlags) {
  std::string output;
  EXPECT_EQ(RunServer({}, &output, {"RELU_MAX_BATCH_REQUESTS=0"}), 2);
  EXPECT_THAT(output, HasSubstr("max-batch-requests"));
}

TEST(ServerE2eTest, HelpListsEveryFlagWithItsEnvironmentVariable) {
  std::string output;
  EXPECT_EQ(RunServer({"--help"}, &output), 0);
  for (const char* env :
       {"RELU_GRPC_ADDRESS", "RELU_METRICS_ADDRESS", "RELU_MAX_MESSAGE_BYTES",
        "RELU_KEEPALIVE_TIME_S", "RELU_KEEPALIVE_TIMEOUT_S",
        "RELU_MAX_CONNECTION_AGE_S", "RELU_TLS_CERT", "RELU_TLS_KEY",
        "RELU_TLS_CLIENT_CA", "RELU_DRAIN_TIMEOUT_S", "RELU_LOG_LEVEL",
        "RELU_LOG_FORMAT", "RELU_KERNEL_THREADS", "RELU_MAX_BATCH_REQUESTS",
        "RELU_MAX_BATCH_ELEMENTS", "RELU_MAX_BATCH_DELAY_US",
        "RELU_MAX_QUEUE_REQUESTS", "RELU_MAX_QUEUE_BYTES"}) {
    EXPECT_THAT(output, HasSubstr(env));
  }
}

TEST(ServerE2eTest, AddressInUseExitsOne) {
  auto first = ServerProcess::Start();
  ASSERT_NE(first, nullptr);
  std::string output;
  EXPECT_EQ(RunServer({"--metrics-address=127.0.0.1:0",
                       "--grpc-address=" + first->target()},
                      &output),
            1);
  EXPECT_THAT(output, HasSubstr("cannot listen on --grpc-address="));
}

}  // namespace
}  // namespace relu

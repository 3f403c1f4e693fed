// The real relu-server binary: start, call, SIGTERM under load, exit codes.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
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
  // Not the default 0.0.0.0:8000, which tests running at once would share.
  if (std::none_of(args.begin(), args.end(), [](const std::string& a) {
        return a.rfind("--http-address", 0) == 0;
      })) {
    argv.push_back("--http-address=off");
  }
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

// Every line of `log` is one JSON object with the fields of --log-format=json.
void ExpectJsonLines(const std::string& log) {
  EXPECT_FALSE(log.empty());
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    ASSERT_NE(end, std::string::npos) << "unterminated line in:\n" << log;
    const std::string line = log.substr(start, end - start);
    start = end + 1;
    const nlohmann::json object = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(object.is_object()) << "not a JSON object: " << line;
    EXPECT_TRUE(object.contains("time") && object["time"].is_string()) << line;
    EXPECT_TRUE(object.contains("level") && object["level"].is_string())
        << line;
    EXPECT_TRUE(object.contains("msg") && object["msg"].is_string()) << line;
  }
}

// A file in a fresh directory, removed with it.
class TempFiles {
 public:
  TempFiles() {
    char dir[] = "/tmp/relu_e2e_XXXXXX";
    dir_ = mkdtemp(dir);
  }
  ~TempFiles() { relu::testing::RunProcess({"/bin/rm", "-rf", dir_}, "", {}); }
  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << contents;
    return path;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

TEST(ServerE2eTest, JsonLogIsOneObjectPerLineFromStartToDrain) {
  auto server = ServerProcess::Start(
      {"--log-format=json", "--log-level=debug", "--metrics-address=off"});
  ASSERT_NE(server, nullptr);
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0);
  EXPECT_THAT(server->log(), HasSubstr("drained"));
  ExpectJsonLines(server->log());
}

TEST(ServerE2eTest, JsonLogEscapesMessagesAndCarriesGrpcLines) {
  std::string output;
  // The address is echoed in the error line, quote included.
  EXPECT_EQ(RunServer({"--log-format=json", "--metrics-address=off",
                       "--grpc-address=127.0.0.1:0\"x\\y"},
                      &output),
            1);
  EXPECT_THAT(output, HasSubstr("cannot listen on --grpc-address="));
  ExpectJsonLines(output);

  // gRPC's own complaint about the port in use goes through the same logger.
  auto first = ServerProcess::Start();
  ASSERT_NE(first, nullptr);
  output.clear();
  EXPECT_EQ(RunServer({"--log-format=json", "--metrics-address=off",
                       "--grpc-address=" + first->target()},
                      &output),
            1);
  ExpectJsonLines(output);

  TempFiles files;
  const std::string bad = files.Write("bad.pem", "not a certificate\n");
  output.clear();
  EXPECT_EQ(RunServer({"--log-format=json", "--metrics-address=off",
                       "--grpc-address=127.0.0.1:0", "--tls-cert=" + bad,
                       "--tls-key=" + bad},
                      &output),
            1);
  ExpectJsonLines(output);
}

TEST(ServerE2eTest, InvalidTlsFilesAreNamedAtStartUp) {
  TempFiles files;
  const std::string garbage = files.Write("garbage.pem", "not a certificate\n");
  std::string output;
  EXPECT_EQ(RunServer({"--metrics-address=off", "--grpc-address=127.0.0.1:0",
                       "--tls-cert=" + garbage, "--tls-key=" + garbage},
                      &output),
            1);
  EXPECT_THAT(output, HasSubstr("--tls-cert=" + garbage +
                                ": holds no PEM certificate"));
  EXPECT_THAT(output, ::testing::Not(HasSubstr("cannot listen")));

  if (access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "no openssl";
  const std::string cert = files.dir() + "/cert.pem";
  const std::string key = files.dir() + "/key.pem";
  const std::string other_key = files.dir() + "/other_key.pem";
  ASSERT_EQ(relu::testing::RunProcess(
                {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec",
                 "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
                 "/CN=localhost", "-days", "1", "-keyout", key, "-out", cert},
                "", {})
                .exit_code,
            0);
  ASSERT_EQ(relu::testing::RunProcess(
                {"/usr/bin/openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-out", other_key},
                "", {})
                .exit_code,
            0);
  output.clear();
  EXPECT_EQ(RunServer({"--metrics-address=off", "--grpc-address=127.0.0.1:0",
                       "--tls-cert=" + cert, "--tls-key=" + cert},
                      &output),
            1);
  EXPECT_THAT(output,
              HasSubstr("--tls-key=" + cert + ": holds no PEM private key"));
  output.clear();
  EXPECT_EQ(RunServer({"--metrics-address=off", "--grpc-address=127.0.0.1:0",
                       "--tls-cert=" + cert, "--tls-key=" + other_key},
                      &output),
            1);
  EXPECT_THAT(output, HasSubstr("--tls-key=" + other_key +
                                ": is not the private key of the certificate "
                                "in --tls-cert=" +
                                cert));
  output.clear();
  EXPECT_EQ(RunServer({"--metrics-address=off", "--grpc-address=127.0.0.1:0",
                       "--tls-cert=" + cert, "--tls-key=" + key,
                       "--tls-client-ca=" + garbage},
                      &output),
            1);
  EXPECT_THAT(output, HasSubstr("--tls-client-ca=" + garbage +
                                ": holds no PEM certificate"));
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

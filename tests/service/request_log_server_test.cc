// Trace context and the request log through a real in-process server on
// 127.0.0.1:0, on both gRPC front doors: the ids a caller sends come back in
// the trailing metadata and in the log's lines, which are JSON; the modes log
// what they say; a log that cannot keep up drops lines and counts them.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "inference/grpc_service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/service/infer_request_util.h"
#include "tests/service/service_test_util.h"
#include "tests/testing/http_client.h"

namespace relu::service {
namespace {

constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kTraceparent[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

v1::ApplyReLURequest Floats(int n) {
  v1::ApplyReLURequest request;
  request.mutable_tensor()->set_dtype(v1::DATA_TYPE_FLOAT32);
  request.mutable_tensor()->add_shape(n);
  request.mutable_tensor()->set_data(std::string(4 * n, '\x01'));
  return request;
}

// A request the server refuses with INVALID_ARGUMENT (data of the wrong
// size).
v1::ApplyReLURequest Invalid() {
  v1::ApplyReLURequest request = Floats(4);
  request.mutable_tensor()->set_data("abc");
  return request;
}

std::string Trailer(const grpc::ClientContext& context,
                    const std::string& name) {
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto it = trailers.find(name);
  if (it == trailers.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

std::vector<nlohmann::json> ParseLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    // Every line parses, or the test fails here.
    lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

// A server whose request log goes to a file in a fresh directory.
class RequestLogServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/relu_request_log_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/requests.log";
  }
  void TearDown() override {
    fixture_.reset();
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }

  void StartServer(const std::string& mode) {
    ServerOptions options;
    options.request_log = mode;
    options.request_log_file = path_;
    fixture_ = std::make_unique<ServerFixture>(options);
    ASSERT_TRUE(fixture_->start_status().ok())
        << fixture_->start_status().ToString();
  }

  grpc::Status Apply(const v1::ApplyReLURequest& request,
                     grpc::ClientContext& context) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    v1::ApplyReLUResponse response;
    return fixture_->stub().ApplyReLU(&context, request, &response);
  }
  grpc::Status Apply(const v1::ApplyReLURequest& request) {
    grpc::ClientContext context;
    return Apply(request, context);
  }

  // Stops the server (the log writes what it holds) and reads the lines.
  std::vector<nlohmann::json> StopAndReadLog() {
    fixture_.reset();
    std::ifstream in(path_);
    std::stringstream text;
    text << in.rdbuf();
    return ParseLines(text.str());
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<ServerFixture> fixture_;
};

TEST_F(RequestLogServerTest, ApplyReLUCarriesTheCallersTrace) {
  StartServer("all");
  grpc::ClientContext context;
  context.AddMetadata("traceparent", kTraceparent);
  context.AddMetadata("tracestate", "vendor=value");
  // Quotes and backslashes: what a caller may put in a metadata value.
  const std::string request_id = "req \"1\" \\ end";
  context.AddMetadata("x-request-id", request_id);
  ASSERT_TRUE(Apply(Floats(16), context).ok());

  const std::string traceparent = Trailer(context, "traceparent");
  ASSERT_EQ(traceparent.size(), 55u) << traceparent;
  EXPECT_EQ(traceparent.substr(0, 36), std::string("00-") + kTraceId + "-");
  const std::string span_id = traceparent.substr(36, 16);
  EXPECT_NE(span_id, "00f067aa0ba902b7");
  EXPECT_EQ(traceparent.substr(52), "-01");
  EXPECT_EQ(Trailer(context, "x-request-id"), request_id);

  const std::vector<nlohmann::json> lines = StopAndReadLog();
  ASSERT_EQ(lines.size(), 1u);
  const nlohmann::json& line = lines[0];
  EXPECT_EQ(line["trace_id"], kTraceId);
  EXPECT_EQ(line["parent_id"], "00f067aa0ba902b7");
  EXPECT_EQ(line["span_id"], span_id);
  EXPECT_EQ(line["request_id"], request_id);
  EXPECT_EQ(line["door"], "grpc");
  EXPECT_EQ(line["method"], "ApplyReLU");
  EXPECT_EQ(line["code"], 0);
  EXPECT_EQ(line["dtype"], "float32");
  EXPECT_EQ(line["elements"], 16);
  EXPECT_EQ(line["bytes_in"], 64);
  EXPECT_EQ(line["bytes_out"], 64);
  EXPECT_EQ(line["batch_size"], 1);
  EXPECT_EQ(line["peer"].get<std::string>().rfind("ipv4:127.0.0.1:", 0), 0u)
      << line["peer"];
  for (const char* field : {"queue_us", "kernel_us", "total_us"}) {
    EXPECT_TRUE(line[field].is_number_integer()) << field;
  }
}

TEST_F(RequestLogServerTest, ModelInferCarriesTheCallersTrace) {
  StartServer("all");
  auto stub = inference::GRPCInferenceService::NewStub(fixture_->channel());
  inference::ModelInferRequest request = MakeInfer("FP32", {2});
  request.add_raw_input_contents(std::string(8, '\0'));
  inference::ModelInferResponse response;
  grpc::ClientContext context;
  context.AddMetadata("traceparent", kTraceparent);
  ASSERT_TRUE(stub->ModelInfer(&context, request, &response).ok());
  EXPECT_EQ(Trailer(context, "traceparent").substr(0, 36),
            std::string("00-") + kTraceId + "-");
  // No x-request-id: the trace id stands for it, and goes back only in the
  // traceparent.
  EXPECT_EQ(Trailer(context, "x-request-id"), "");

  const std::vector<nlohmann::json> lines = StopAndReadLog();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["trace_id"], kTraceId);
  EXPECT_EQ(lines[0]["request_id"], kTraceId);
  EXPECT_EQ(lines[0]["method"], "ModelInfer");
  EXPECT_EQ(lines[0]["elements"], 2);
}

TEST_F(RequestLogServerTest, ACallWithoutOrWithABadTraceGetsItsOwn) {
  StartServer("all");
  // No trace header and success: the ids are logged, not returned.
  grpc::ClientContext quiet;
  ASSERT_TRUE(Apply(Floats(1), quiet).ok());
  EXPECT_EQ(Trailer(quiet, "traceparent"), "");
  EXPECT_EQ(Trailer(quiet, "x-request-id"), "");
  // No trace header and a failure: returned, so the call can be found.
  grpc::ClientContext failed;
  ASSERT_EQ(Apply(Invalid(), failed).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // An invalid traceparent asks for the ids: a new trace, returned.
  grpc::ClientContext bad;
  bad.AddMetadata("traceparent",
                  "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
  ASSERT_TRUE(Apply(Floats(1), bad).ok());

  std::vector<std::string> trace_ids;
  for (grpc::ClientContext* context : {&failed, &bad}) {
    const std::string traceparent = Trailer(*context, "traceparent");
    ASSERT_EQ(traceparent.size(), 55u) << traceparent;
    trace_ids.push_back(traceparent.substr(3, 32));
    EXPECT_NE(trace_ids.back(), std::string(32, '0'));
    EXPECT_EQ(traceparent.substr(52), "-00");
  }
  EXPECT_NE(trace_ids[0], trace_ids[1]);

  const std::vector<nlohmann::json> lines = StopAndReadLog();
  ASSERT_EQ(lines.size(), 3u);
  const std::string quiet_id = lines[0]["trace_id"].get<std::string>();
  EXPECT_EQ(quiet_id.size(), 32u);
  EXPECT_EQ(quiet_id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(quiet_id, std::string(32, '0'));
  EXPECT_EQ(lines[0]["request_id"], quiet_id);
  EXPECT_EQ(lines[0]["span_id"].get<std::string>().size(), 16u);
  EXPECT_NE(quiet_id, trace_ids[0]);
  EXPECT_NE(quiet_id, trace_ids[1]);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(lines[i + 1]["trace_id"], trace_ids[i]);
  }
  for (const nlohmann::json& line : lines) {
    EXPECT_FALSE(line.contains("parent_id"));
  }
}

TEST_F(RequestLogServerTest, ErrorsModeLogsFailedCallsOnly) {
  StartServer("errors");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Apply(Floats(4)).ok());
  grpc::ClientContext context;
  context.AddMetadata("traceparent", kTraceparent);
  // The refusal carries the ids too.
  EXPECT_EQ(Apply(Invalid(), context).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Trailer(context, "traceparent").substr(3, 32), kTraceId);
  ASSERT_TRUE(Apply(Floats(4)).ok());
  EXPECT_EQ(Apply(Invalid()).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  const std::vector<nlohmann::json> lines = StopAndReadLog();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["trace_id"], kTraceId);
  for (const nlohmann::json& line : lines) {
    EXPECT_EQ(line["code"], 3);
    EXPECT_EQ(line["status"], "INVALID_ARGUMENT");
    EXPECT_FALSE(line["message"].get<std::string>().empty());
    EXPECT_TRUE(line["dtype"].is_null());
    EXPECT_EQ(line["batch_size"], 0);
  }
}

TEST_F(RequestLogServerTest, SampleModeLogsOneCallInN) {
  StartServer("sample:3");
  for (int i = 0; i < 9; ++i) {
    grpc::ClientContext context;
    context.AddMetadata("x-request-id", "call-" + std::to_string(i));
    // Failed calls are sampled like any other.
    ASSERT_EQ(Apply(i == 3 ? Invalid() : Floats(4), context).ok(), i != 3);
  }
  const std::vector<nlohmann::json> lines = StopAndReadLog();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["request_id"], "call-0");
  EXPECT_EQ(lines[1]["request_id"], "call-3");
  EXPECT_EQ(lines[1]["code"], 3);
  EXPECT_EQ(lines[2]["request_id"], "call-6");
}

TEST_F(RequestLogServerTest, OffLogsNothingButStillReturnsIds) {
  StartServer("off");
  grpc::ClientContext context;
  ASSERT_FALSE(Apply(Invalid(), context).ok());
  EXPECT_EQ(Trailer(context, "traceparent").size(), 55u);
  fixture_.reset();
  EXPECT_FALSE(std::ifstream(path_).good());  // never opened
}

double Scrape(int port, const std::string& name) {
  absl::StatusOr<relu::testing::HttpResponse> response =
      relu::testing::HttpRequest(port, "/metrics");
  EXPECT_TRUE(response.ok()) << response.status();
  if (!response.ok()) return -1;
  std::istringstream in(response->body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) {
      return std::stod(line.substr(name.size() + 1));
    }
  }
  ADD_FAILURE() << "no " << name << " in /metrics";
  return -1;
}

// The log goes into a pipe the test does not read at first: once the pipe's
// buffer is full the writer thread blocks in write(), the log's buffer fills,
// and further lines are dropped and counted while calls go on unslowed.
TEST(RequestLogFloodTest, AStuckWriterDropsAndCountsLines) {
  char dir[] = "/tmp/relu_request_log_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string fifo = std::string(dir) + "/requests.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // A reader exists, so the server's open for writing does not block.
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  // The smallest pipe (one page), so that a few lines fill it.
  ASSERT_GE(fcntl(reader, F_SETPIPE_SZ, 4096), 0);

  ServerOptions options;
  options.request_log = "all";
  options.request_log_file = fifo;
  options.request_log_buffer_lines = 16;
  options.grpc_address = "127.0.0.1:0";
  options.metrics_address = "127.0.0.1:0";
  options.http_address = "off";
  auto server = std::make_unique<ReluServer>(options);
  ASSERT_TRUE(server->Start().ok());
  const std::string metrics = server->metrics_address();
  const int metrics_port = std::stoi(metrics.substr(metrics.rfind(':') + 1));
  auto stub = v1::ReluService::NewStub(grpc::CreateChannel(
      server->grpc_address(), grpc::InsecureChannelCredentials()));

  // The pipe holds a dozen lines of ~330 bytes: 800 calls overflow it and
  // the 16-line buffer many times over.
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 200;
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        grpc::ClientContext context;
        context.AddMetadata("traceparent", kTraceparent);
        v1::ApplyReLUResponse response;
        if (!stub->ApplyReLU(&context, Floats(8), &response).ok()) ++failed;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  constexpr int kCalls = kThreads * kCallsPerThread;

  // Every call is answered, so every line was either buffered or dropped.
  const double dropped = Scrape(metrics_port, "relu_request_log_dropped_total");
  EXPECT_GT(dropped, 0);
  EXPECT_LT(dropped, kCalls);

  // Read the pipe to its end while the server stops (and writes the rest).
  std::string text;
  std::thread drain([&] {
    const int flags = fcntl(reader, F_GETFL);
    fcntl(reader, F_SETFL, flags & ~O_NONBLOCK);
    char buffer[65536];
    for (ssize_t n; (n = read(reader, buffer, sizeof(buffer))) > 0;) {
      text.append(buffer, static_cast<size_t>(n));
    }
  });
  server.reset();
  drain.join();
  close(reader);
  unlink(fifo.c_str());
  rmdir(dir);

  const std::vector<nlohmann::json> lines = ParseLines(text);
  EXPECT_EQ(static_cast<double>(lines.size()) + dropped, kCalls);
  for (const nlohmann::json& line : lines) {
    ASSERT_EQ(line["trace_id"], kTraceId);
  }
}

}  // namespace
}  // namespace relu::service

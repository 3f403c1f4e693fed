// The bad-input table, each row a test against the real relu-server binary.
// All rows run in this one process against ONE server (the suite shares it),
// in the order written, and after every row the server must still answer a
// correct call bit-exactly (four dtypes) and report SERVING: bad input never
// hurts the calls that follow it. At the end SIGTERM must drain cleanly.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "relu/v1/relu.grpc.pb.h"
#include "tests/reliability/reference.h"
#include "tests/testing/server_process.h"

namespace relu::reliability {
namespace {

using ::testing::HasSubstr;
using v1::ApplyReLURequest;
using v1::ApplyReLUResponse;

// Small enough that an over-limit message is cheap to build, big enough for
// the mid-call cancellations below.
constexpr size_t kMaxMessageBytes = size_t{8} << 20;
constexpr char kMethod[] = "/relu.v1.ReluService/ApplyReLU";

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = testing::ServerProcess::Start(
                  {"--max-message-bytes=" + std::to_string(kMaxMessageBytes),
                   "--log-level=debug", "--drain-timeout-s=120"})
                  .release();
    ASSERT_NE(server_, nullptr);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    channel_ = new std::shared_ptr<grpc::Channel>(grpc::CreateCustomChannel(
        server_->target(), grpc::InsecureChannelCredentials(), args));
  }
  // Last of all: SIGTERM drains cleanly. Every call the rows made, the
  // refused and unparsable ones included, has ended (a leaked call would
  // keep the drain waiting for its response until the timeout).
  static void TearDownTestSuite() {
    delete channel_;
    channel_ = nullptr;
    if (server_ != nullptr && !server_->Exited()) {
      server_->Signal(SIGTERM);
      EXPECT_EQ(server_->Wait(), 0) << server_->log();
      EXPECT_THAT(server_->log(), HasSubstr("responses sent"));
      EXPECT_THAT(server_->log(), HasSubstr("drained; exiting"));
    }
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override { ASSERT_NE(server_, nullptr); }

  // After every row: the process lives, a correct call is answered
  // correctly, and health says SERVING.
  void TearDown() override {
    if (server_ == nullptr) return;
    ASSERT_FALSE(server_->Exited()) << server_->log();
    std::mt19937_64 rng(7);
    for (v1::DataType dtype : {v1::DATA_TYPE_FLOAT32, v1::DATA_TYPE_FLOAT64,
                               v1::DATA_TYPE_FLOAT16, v1::DATA_TYPE_BFLOAT16}) {
      ApplyReLURequest request =
          RandomRequest(rng, dtype, 1000, kernel::Params{6.0, 0.1, 0.5});
      ApplyReLUResponse response;
      grpc::Status status = Call(request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      EXPECT_EQ(response.tensor().dtype(), dtype);
      EXPECT_THAT(response.tensor().shape(), ::testing::ElementsAre(1000));
      EXPECT_TRUE(SameElements(static_cast<kernel::DType>(dtype),
                               ReferenceOutput(request),
                               response.tensor().data()));
    }
    auto health = grpc::health::v1::Health::NewStub(*channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok());
    EXPECT_EQ(response.status(),
              grpc::health::v1::HealthCheckResponse::SERVING);
  }

  static grpc::Status Call(
      const ApplyReLURequest& request, ApplyReLUResponse* response,
      std::chrono::milliseconds deadline = std::chrono::seconds(60)) {
    auto stub = v1::ReluService::NewStub(*channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + deadline);
    return stub->ApplyReLU(&context, request, response);
  }

  // Expects `request` to fail with `code` and a message containing `text`.
  static void ExpectError(const ApplyReLURequest& request,
                          grpc::StatusCode code, const std::string& text) {
    ApplyReLUResponse response;
    grpc::Status status = Call(request, &response);
    EXPECT_EQ(status.error_code(), code) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(text));
    std::printf("  row: %s -> code %d: %s\n",
                ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                status.error_code(), status.error_message().c_str());
  }

  static ApplyReLURequest Float32(std::vector<int64_t> shape, size_t bytes) {
    ApplyReLURequest request;
    request.mutable_tensor()->set_dtype(v1::DATA_TYPE_FLOAT32);
    for (int64_t d : shape) request.mutable_tensor()->add_shape(d);
    request.mutable_tensor()->set_data(std::string(bytes, '\0'));
    return request;
  }

  // Writes `bytes` to a fresh TCP connection to the server, then reads until
  // the server closes it (or 30 s pass: a hang guard, not a bound). Returns
  // whether the server closed the connection.
  static bool SendRawAndExpectClose(const std::string& bytes) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_->grpc_port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return false;
    }
    timeval tv{30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    // The server may close while we still write: ignore EPIPE/ECONNRESET.
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n =
          send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    char buf[4096];
    bool closed = false;
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) {
        closed = true;
        break;
      }
      if (n < 0) break;  // timeout
    }
    close(fd);
    return closed;
  }

  static testing::ServerProcess* server_;
  static std::shared_ptr<grpc::Channel>* channel_;
};

testing::ServerProcess* BadInputTest::server_ = nullptr;
std::shared_ptr<grpc::Channel>* BadInputTest::channel_ = nullptr;

TEST_F(BadInputTest, UnknownDtype) {
  ApplyReLURequest request = Float32({2}, 8);
  request.mutable_tensor()->set_dtype(static_cast<v1::DataType>(7));
  ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT,
              "tensor.dtype 7 is not a known DataType");
}

TEST_F(BadInputTest, UnspecifiedDtype) {
  ApplyReLURequest request = Float32({2}, 8);
  request.mutable_tensor()->set_dtype(v1::DATA_TYPE_UNSPECIFIED);
  ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT,
              "DATA_TYPE_UNSPECIFIED");
}

TEST_F(BadInputTest, NegativeDimension) {
  ExpectError(Float32({2, -3}, 24), grpc::StatusCode::INVALID_ARGUMENT,
              "tensor.shape[1] is -3; dimensions must be >= 0");
}

TEST_F(BadInputTest, ElementCountOverflows) {
  // 2^32 * 2^31 elements of 4 bytes: 2^65 bytes.
  ExpectError(Float32({int64_t{1} << 32, int64_t{1} << 31}, 0),
              grpc::StatusCode::INVALID_ARGUMENT, "overflows 64 bits");
  ExpectError(Float32({std::numeric_limits<int64_t>::max(), 2}, 0),
              grpc::StatusCode::INVALID_ARGUMENT, "overflows 64 bits");
}

TEST_F(BadInputTest, DataTooShort) {
  ExpectError(Float32({2, 3}, 20), grpc::StatusCode::INVALID_ARGUMENT,
              "tensor.data has 20 bytes; shape [2, 3] of float32 needs 24");
}

TEST_F(BadInputTest, DataTooLong) {
  ExpectError(Float32({2, 3}, 28), grpc::StatusCode::INVALID_ARGUMENT,
              "tensor.data has 28 bytes; shape [2, 3] of float32 needs 24");
}

TEST_F(BadInputTest, EmptyTensorIsOk) {
  for (std::vector<int64_t> shape :
       {std::vector<int64_t>{0}, {3, 0, 5}, {0, int64_t{1} << 62}}) {
    ApplyReLURequest request = Float32(shape, 0);
    ApplyReLUResponse response;
    grpc::Status status = Call(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_THAT(response.tensor().shape(), ::testing::ElementsAreArray(shape));
    EXPECT_TRUE(response.tensor().data().empty());
  }
}

TEST_F(BadInputTest, ScalarIsOk) {
  ApplyReLURequest request = Float32({}, 4);
  const float x = -2.0f;
  std::memcpy(request.mutable_tensor()->mutable_data()->data(), &x, 4);
  request.mutable_params()->set_negative_slope(0.5);
  ApplyReLUResponse response;
  grpc::Status status = Call(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.tensor().shape_size(), 0);
  ASSERT_EQ(response.tensor().data().size(), 4u);
  float y;
  std::memcpy(&y, response.tensor().data().data(), 4);
  EXPECT_EQ(y, -1.0f);
}

TEST_F(BadInputTest, NanParams) {
  const double nan = std::nan("");
  ApplyReLURequest request = Float32({1}, 4);
  request.mutable_params()->set_max_value(nan);
  ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT, "max_value");
  request = Float32({1}, 4);
  request.mutable_params()->set_negative_slope(nan);
  ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT, "negative_slope");
  request = Float32({1}, 4);
  request.mutable_params()->set_threshold(nan);
  ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT, "threshold");
}

TEST_F(BadInputTest, NegativeParams) {
  ApplyReLURequest request = Float32({1}, 4);
  request.mutable_params()->set_max_value(-1);
  ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT,
              "max_value of a ReLU layer cannot be a negative value. "
              "Received: max_value=-1.0");
  request = Float32({1}, 4);
  request.mutable_params()->set_negative_slope(-0.5);
  ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT,
              "negative_slope=-0.5");
  request = Float32({1}, 4);
  request.mutable_params()->set_threshold(-2);
  ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT, "threshold=-2.0");
}

TEST_F(BadInputTest, MissingTensor) {
  ApplyReLURequest request;
  request.mutable_params()->set_max_value(1);
  ExpectError(request, grpc::StatusCode::INVALID_ARGUMENT,
              "tensor is missing from the request");
}

TEST_F(BadInputTest, MessageOverSizeLimit) {
  ExpectError(Float32({(kMaxMessageBytes + 4096) / 4}, kMaxMessageBytes + 4096),
              grpc::StatusCode::RESOURCE_EXHAUSTED, "");
}

TEST_F(BadInputTest, DeadlineAlreadyPassed) {
  auto stub = v1::ReluService::NewStub(*channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() -
                       std::chrono::seconds(1));
  ApplyReLUResponse response;
  grpc::Status status = stub->ApplyReLU(&context, Float32({4}, 16), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << status.error_message();
  std::printf("  row: DeadlineAlreadyPassed -> code %d: %s\n",
              status.error_code(), status.error_message().c_str());
  // gRPC fails an expired call in the client without sending it; to have
  // the server see calls whose deadline passes on the way in or in the
  // queue, send big ones with deadlines 0-39 ms ahead: each ends
  // DEADLINE_EXCEEDED or OK (and then correct).
  std::mt19937_64 rng(13);
  ApplyReLURequest big = RandomRequest(rng, v1::DATA_TYPE_FLOAT32,
                                       (kMaxMessageBytes - 1024) / 4, {});
  const std::string want = ReferenceOutput(big);
  int expired = 0;
  for (int i = 0; i < 40; ++i) {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::microseconds(1000 * i));
    ApplyReLUResponse r;
    grpc::Status s = stub->ApplyReLU(&c, big, &r);
    if (s.ok()) {
      EXPECT_TRUE(
          SameElements(kernel::DType::kFloat32, want, r.tensor().data()));
    } else {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
          << s.error_message();
      ++expired;
    }
  }
  std::printf(
      "  row: DeadlineAlreadyPassed -> 8 MiB calls with "
      "deadlines 0-39 ms: %d of 40 DEADLINE_EXCEEDED, the rest OK\n",
      expired);
}

TEST_F(BadInputTest, ClientDisconnectsMidCall) {
  // Big calls cancelled at different points of their life: while the
  // request is still being sent, queued, or computing. Each ends CANCELLED
  // (or OK when it won the race); none may hurt the server.
  std::mt19937_64 rng(3);
  ApplyReLURequest big = RandomRequest(rng, v1::DATA_TYPE_FLOAT32,
                                       (kMaxMessageBytes - 1024) / 4, {});
  auto stub = v1::ReluService::NewStub(*channel_);
  int cancelled = 0;
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext context;
    ApplyReLUResponse response;
    std::thread canceller([&context, i] {
      std::this_thread::sleep_for(std::chrono::microseconds(250 * i));
      context.TryCancel();
    });
    grpc::Status status = stub->ApplyReLU(&context, big, &response);
    canceller.join();
    EXPECT_TRUE(status.ok() ||
                status.error_code() == grpc::StatusCode::CANCELLED)
        << status.error_code() << " " << status.error_message();
    cancelled += status.error_code() == grpc::StatusCode::CANCELLED;
  }
  EXPECT_GT(cancelled, 0);
  // A whole connection dropped mid-request: HTTP/2 preface, SETTINGS, the
  // request's HEADERS are not even needed; half a DATA frame then close.
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  std::string settings("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  std::string data_frame_head("\x00\x40\x00\x00\x00\x00\x00\x00\x01", 9);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->grpc_port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string bytes =
      preface + settings + data_frame_head + std::string(100, 'x');
  EXPECT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
  close(fd);
  std::printf("  row: ClientDisconnectsMidCall -> %d of 20 CANCELLED\n",
              cancelled);
}

TEST_F(BadInputTest, RandomBytesAsRequest) {
  grpc::GenericStub stub(*channel_);
  std::mt19937_64 rng(11);
  auto call = [&](const std::string& bytes) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    grpc::CompletionQueue cq;
    const std::string method = kMethod;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
        stub.PrepareUnaryCall(&context, method, request, &cq);
    call->StartCall();
    grpc::Status result;
    call->Finish(&response, &result, reinterpret_cast<void*>(1));
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return result;
  };
  // Control: a valid request's bytes through the same generic call.
  {
    std::string valid;
    Float32({2}, 8).SerializeToString(&valid);
    grpc::Status ok = call(valid);
    ASSERT_TRUE(ok.ok()) << ok.error_code() << " " << ok.error_message();
  }
  // Field number 0 is never valid protobuf. ApplyReLU parses its own
  // request bytes (raw ByteBuffer API), so the answer is ours:
  // INVALID_ARGUMENT naming the message and its size.
  std::string bytes(1000, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  bytes[0] = 0x07;
  grpc::Status status = call(bytes);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();
  EXPECT_EQ(status.error_message(),
            "request is not a valid relu.v1.ApplyReLURequest: protobuf "
            "cannot parse its 1000 bytes");
  std::printf("  row: RandomBytesAsRequest -> code %d: %s\n",
              status.error_code(), status.error_message().c_str());
  // Any random bytes: refused by the parse or, if they happen to parse, by
  // validation; INVALID_ARGUMENT either way, never anything else.
  int unparsed = 0;
  for (int i = 0; i < 200; ++i) {
    bytes.assign(1 + rng() % 300, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    status = call(bytes);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << status.error_message();
    unparsed += status.error_message().rfind(
                    "request is not a valid relu.v1.ApplyReLURequest", 0) == 0;
  }
  std::printf(
      "  row: RandomBytesAsRequest -> %d of 200 random messages "
      "unparsable, the rest refused by validation; all INVALID_ARGUMENT\n",
      unparsed);
}

TEST_F(BadInputTest, GarbageHttp2Connection) {
  // Not HTTP/2 at all.
  EXPECT_TRUE(SendRawAndExpectClose("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  // A bad preface.
  EXPECT_TRUE(SendRawAndExpectClose("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"));
  // A good preface followed by random frames.
  std::mt19937_64 rng(5);
  for (int i = 0; i < 20; ++i) {
    std::string junk(64 + rng() % 4096, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    EXPECT_TRUE(
        SendRawAndExpectClose("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + junk));
  }
  // Pure random bytes.
  std::string junk(10000, '\0');
  for (char& c : junk) c = static_cast<char>(rng());
  EXPECT_TRUE(SendRawAndExpectClose(junk));
  std::printf(
      "  row: GarbageHttp2Connection -> connection closed by the "
      "server (23 connections)\n");
}

// The last row: a burst of correct calls of every dtype after all the above.
TEST_F(BadInputTest, CorrectCallsAfterAllRows) {
  std::mt19937_64 rng(9);
  for (int i = 0; i < 50; ++i) {
    const auto dtype = static_cast<v1::DataType>(1 + rng() % 4);
    ApplyReLURequest request =
        RandomRequest(rng, dtype, rng() % 5000, RandomParams(rng));
    ApplyReLUResponse response;
    grpc::Status status = Call(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(SameElements(static_cast<kernel::DType>(dtype),
                             ReferenceOutput(request),
                             response.tensor().data()));
  }
}

}  // namespace
}  // namespace relu::reliability

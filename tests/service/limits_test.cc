// What bounds the server's memory: compression refused by default and
// inflated with bounds when accepted, the
// tensor rank and the length of shape messages, the responses' memory
// budget, the memory limit read from cgroups, and the shape count taken
// before a request is parsed.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "gtest/gtest.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/service/call_tracker.h"
#include "server/service/request_wire.h"
#include "server/service/resource_limits.h"
#include "server/service/validation.h"
#include "tests/service/service_test_util.h"

namespace relu::service {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::ApplyReLURequest FloatRequest(std::vector<int64_t> shape, size_t elements) {
  v1::ApplyReLURequest request;
  request.mutable_tensor()->set_dtype(v1::DATA_TYPE_FLOAT32);
  for (int64_t dim : shape) request.mutable_tensor()->add_shape(dim);
  request.mutable_tensor()->set_data(std::string(elements * 4, '\0'));
  return request;
}

TEST(CompressionTest, RefusedByDefaultWithoutInflating) {
  ServerFixture fixture;
  ASSERT_TRUE(fixture.start_status().ok());
  grpc::ClientContext context;
  context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  v1::ApplyReLUResponse response;
  grpc::Status status =
      fixture.stub().ApplyReLU(&context, FloatRequest({1000}, 1000), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
      << status.error_message();
  // Still serving, uncompressed.
  EXPECT_TRUE(fixture.Call(FloatRequest({4}, 4), &response).ok());
}

// With --accept-compression, requests inflate in the server (gRPC's own
// decompression is off: it has no bound in 1.51), to at most
// --max-message-bytes. A 4 MiB request of zeros is about 4 KiB gzipped.
class AcceptedCompressionTest : public ::testing::Test {
 protected:
  static ServerOptions Options() {
    ServerOptions options;
    options.accept_compression = true;
    options.max_message_bytes = size_t{1} << 20;
    return options;
  }
  ServerFixture fixture_{Options()};
};

TEST_F(AcceptedCompressionTest, InflatingPastTheMessageLimitIsRefused) {
  ASSERT_TRUE(fixture_.start_status().ok());
  for (grpc_compression_algorithm algorithm :
       {GRPC_COMPRESS_GZIP, GRPC_COMPRESS_DEFLATE}) {
    grpc::ClientContext context;
    context.set_compression_algorithm(algorithm);
    v1::ApplyReLUResponse response;
    grpc::Status status = fixture_.stub().ApplyReLU(
        &context, FloatRequest({1 << 20}, 1 << 20), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(status.error_message(),
                HasSubstr("inflates past 1048576 bytes (--max-message-bytes)"));
  }
  // ModelInfer's too.
  auto stub = inference::GRPCInferenceService::NewStub(fixture_.channel());
  inference::ModelInferRequest request;
  request.set_model_name("relu");
  auto* input = request.add_inputs();
  input->set_name("input");
  input->set_datatype("FP32");
  input->add_shape(1 << 20);
  request.add_raw_input_contents(std::string(4 << 20, '\0'));
  grpc::ClientContext context;
  context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  inference::ModelInferResponse response;
  grpc::Status status = stub->ModelInfer(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("inflates past 1048576"));
  // Still serving.
  v1::ApplyReLUResponse ok;
  EXPECT_TRUE(fixture_.Call(FloatRequest({4}, 4), &ok).ok());
}

TEST_F(AcceptedCompressionTest, MessagesUpToTheLimitInflateAndAnswer) {
  ASSERT_TRUE(fixture_.start_status().ok());
  // The largest request that fits: its serialized size is the limit.
  v1::ApplyReLURequest request = FloatRequest({1}, 1);
  const size_t overhead = request.ByteSizeLong() - 4;
  size_t elements = ((size_t{1} << 20) - overhead) / 4;
  for (;; --elements) {
    request = FloatRequest({static_cast<int64_t>(elements)}, elements);
    if (request.ByteSizeLong() <= (size_t{1} << 20)) break;
  }
  for (grpc_compression_algorithm algorithm :
       {GRPC_COMPRESS_GZIP, GRPC_COMPRESS_DEFLATE}) {
    grpc::ClientContext context;
    context.set_compression_algorithm(algorithm);
    v1::ApplyReLUResponse response;
    grpc::Status status =
        fixture_.stub().ApplyReLU(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.tensor().data(), std::string(elements * 4, '\0'));
  }
}

// The inflated bytes are reserved from the responses' budget (3/8 of
// --memory-limit-bytes: 3 MiB of 8) before they are allocated.
TEST(CompressionBudgetTest, InflatedBytesCountInTheMemoryBudget) {
  ServerOptions options;
  options.accept_compression = true;
  options.memory_limit_bytes = size_t{8} << 20;
  options.max_message_bytes = size_t{16} << 20;
  ServerFixture fixture(options);
  ASSERT_TRUE(fixture.start_status().ok());
  grpc::ClientContext context;
  context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  v1::ApplyReLUResponse response;
  grpc::Status status = fixture.stub().ApplyReLU(
      &context, FloatRequest({2 << 20}, 2 << 20), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(),
              HasSubstr("the server's memory for responses is taken: a "
                        "decompressed request of 1048576 bytes does not fit"));
  // The refused call's reservation returns when gRPC releases the call,
  // asynchronously: the server recovers without help.
  for (int attempt = 0; attempt < 100; ++attempt) {
    status = fixture.Call(FloatRequest({4}, 4), &response);
    if (status.ok()) break;
    usleep(50'000);
  }
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST(RankTest, TensorFlowsLimitIsAcceptedOneMoreIsNot) {
  ServerFixture fixture;
  ASSERT_TRUE(fixture.start_status().ok());
  v1::ApplyReLUResponse response;
  EXPECT_TRUE(
      fixture.Call(FloatRequest(std::vector<int64_t>(254, 1), 1), &response)
          .ok());
  grpc::Status status =
      fixture.Call(FloatRequest(std::vector<int64_t>(255, 1), 1), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "tensor.shape has 255 dimensions; at most 254 are accepted "
            "(TensorFlow's limit)");
}

// A shape of a million dimensions is refused before it is parsed, with a
// short message.
TEST(RankTest, HugeShapeRefusedWithShortMessage) {
  ServerFixture fixture;
  ASSERT_TRUE(fixture.start_status().ok());
  v1::ApplyReLUResponse response;
  grpc::Status status = fixture.Call(
      FloatRequest(std::vector<int64_t>(1'000'000, 1), 1), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "tensor.shape has 1000000 dimensions; at most 254 are accepted "
            "(TensorFlow's limit)");
}

// The same for ModelInfer, whose request is also counted before its parse.
TEST(RankTest, HugeModelInferShapeRefusedWithShortMessage) {
  ServerFixture fixture;
  ASSERT_TRUE(fixture.start_status().ok());
  auto stub = inference::GRPCInferenceService::NewStub(fixture.channel());
  inference::ModelInferRequest request;
  request.set_model_name("relu");
  auto* input = request.add_inputs();
  input->set_name("input");
  input->set_datatype("FP32");
  for (int i = 0; i < 1'000'000; ++i) input->add_shape(1);
  request.add_raw_input_contents(std::string(4, '\0'));
  grpc::ClientContext context;
  inference::ModelInferResponse response;
  grpc::Status status = stub->ModelInfer(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "inputs[0].shape has 1000000 dimensions; at most 254 are accepted "
            "(TensorFlow's limit)");
}

TEST(ShapeTextTest, LongShapesAreAbbreviated) {
  EXPECT_EQ(ShapeText({}), "[]");
  EXPECT_EQ(ShapeText({2, 3}), "[2, 3]");
  std::vector<int64_t> sixteen(16, 7);
  EXPECT_EQ(ShapeText(sixteen),
            "[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]");
  std::vector<int64_t> long_shape(200, 1);
  long_shape.back() = 9;
  EXPECT_EQ(ShapeText(long_shape),
            "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, ..., 9] (200 "
            "dimensions)");
}

TEST(ShapeTextTest, MessagesOfLongInvalidShapesStayShort) {
  std::vector<int64_t> shape(200, 1'000'000'007);
  shape[3] = -1;
  auto status =
      ValidateTensorSize(kernel::DType::kFloat32, shape, 4, TensorFieldNames());
  ASSERT_FALSE(status.ok());
  EXPECT_LT(status.status().message().size(), 300u);
  EXPECT_THAT(status.status().message(), HasSubstr("(200 dimensions)"));
}

// CountShapeDimensions against protobuf's own parse, for the layouts a
// client can send: packed, unpacked, split over two tensor fields.
TEST(CountShapeDimensionsTest, AgreesWithProtobuf) {
  std::vector<std::string> wires;
  wires.push_back(FloatRequest({2, 3, 4}, 24).SerializeAsString());
  wires.push_back(FloatRequest({}, 1).SerializeAsString());
  wires.push_back(FloatRequest({300, 70000, 1}, 0).SerializeAsString());
  {
    // Unpacked shape entries (field 2, varint), then a packed run.
    std::string tensor;
    google::protobuf::io::StringOutputStream stream(&tensor);
    google::protobuf::io::CodedOutputStream out(&stream);
    out.WriteTag((1 << 3) | 0);
    out.WriteVarint32(1);
    for (int i = 0; i < 5; ++i) {
      out.WriteTag((2 << 3) | 0);
      out.WriteVarint64(1000 + i);
    }
    out.WriteTag((2 << 3) | 2);
    out.WriteVarint32(2);
    out.WriteVarint32(5);
    out.WriteVarint32(6);
    out.Trim();
    std::string request;
    google::protobuf::io::StringOutputStream rstream(&request);
    google::protobuf::io::CodedOutputStream rout(&rstream);
    // An unknown group (field 9) first, with a nested one: protobuf keeps
    // it as an unknown field; counting passes over it.
    rout.WriteTag((9 << 3) | 3);
    rout.WriteTag((10 << 3) | 3);
    rout.WriteTag((2 << 3) | 0);
    rout.WriteVarint32(77);
    rout.WriteTag((10 << 3) | 4);
    rout.WriteTag((9 << 3) | 4);
    for (int twice = 0; twice < 2; ++twice) {  // merged by protobuf
      rout.WriteTag((1 << 3) | 2);
      rout.WriteVarint32(tensor.size());
      rout.WriteString(tensor);
    }
    rout.Trim();
    wires.push_back(request);
  }
  {
    // A field 16 varint whose 5-byte tag has bits past 32 (protobuf keeps
    // the low 32: found by the fuzzer), then the tensor.
    std::string request("\x80\x81\x80\x80\x20\x69", 6);
    request += FloatRequest({2, 3, 4}, 24).SerializeAsString();
    wires.push_back(request);
  }
  for (const std::string& wire : wires) {
    v1::ApplyReLURequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(wire));
    // In one piece (the pointer walk), and in two (the general one).
    EXPECT_EQ(CountShapeDimensions({absl::string_view(wire)}),
              static_cast<size_t>(parsed.tensor().shape_size()));
    for (size_t cut = 1; cut <= wire.size(); cut += 7) {
      std::vector<absl::string_view> chunks = {
          absl::string_view(wire).substr(0, cut),
          absl::string_view(wire).substr(cut)};
      EXPECT_EQ(CountShapeDimensions(chunks),
                static_cast<size_t>(parsed.tensor().shape_size()))
          << "cut at " << cut;
    }
  }
}

// 8 MiB of memory: 3 MiB for requests (gRPC's quota resets the stream of a
// 4 MiB request as it arrives, RESOURCE_EXHAUSTED for the client) and 3 MiB
// for responses.
TEST(MemoryLimitTest, CallsPastTheLimitAreRefusedAndTheServerGoesOn) {
  ServerOptions options;
  options.memory_limit_bytes = size_t{8} << 20;
  ServerFixture fixture(options);
  ASSERT_TRUE(fixture.start_status().ok());
  v1::ApplyReLUResponse response;
  EXPECT_TRUE(fixture.Call(FloatRequest({1 << 18}, 1 << 18), &response).ok());
  grpc::Status status =
      fixture.Call(FloatRequest({1 << 20}, 1 << 20), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  // gRPC returns the refused stream's memory to its quota asynchronously
  // (one or two retries, here): the server recovers without help.
  for (int attempt = 0; attempt < 100; ++attempt) {
    status = fixture.Call(FloatRequest({1 << 18}, 1 << 18), &response);
    if (status.ok()) break;
    usleep(50'000);
  }
  EXPECT_TRUE(status.ok()) << status.error_code() << " "
                           << status.error_message();
}

// The responses' budget: a reservation that does not fit is refused with a
// message naming the sizes, and a call's reservation returns when it ends.
TEST(ResponseBudgetTest, ReservationsReturnWhenCallsEnd) {
  CallTracker tracker(1000, std::chrono::seconds(0));
  CallTracker::Call first, second;
  tracker.CallStarted(&first);
  tracker.CallStarted(&second);
  EXPECT_TRUE(tracker.ReserveResponse(&first, 600).ok());
  absl::Status refused = tracker.ReserveResponse(&second, 500);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.message(),
            "the server's memory for responses is taken: a response of 500 "
            "bytes does not fit in the 400 bytes left of 1000 (3/8 of "
            "--memory-limit-bytes); retry later");
  EXPECT_EQ(tracker.calls_with_responses(), 1u);
  tracker.CallEnded(&first);
  EXPECT_TRUE(tracker.ReserveResponse(&second, 500).ok());
  tracker.CallEnded(&second);
  EXPECT_EQ(tracker.response_budget().used(), 0u);
  EXPECT_EQ(tracker.calls(), 0u);
}

TEST(MemoryBudgetTest, ReservesWithinCapacity) {
  MemoryBudget budget(100);
  EXPECT_TRUE(budget.TryReserve(60));
  EXPECT_FALSE(budget.TryReserve(41));
  EXPECT_TRUE(budget.TryReserve(40));
  EXPECT_EQ(budget.used(), 100u);
  budget.Release(60);
  EXPECT_TRUE(budget.TryReserve(60));
  EXPECT_FALSE(budget.TryReserve(1));
}

class CgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("relu_cgroup_test." + std::to_string(getpid()));
    std::filesystem::remove_all(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void Write(const std::string& relative, const std::string& text) {
    const std::filesystem::path path = root_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  std::filesystem::path root_;
};

TEST_F(CgroupTest, V2TakesTheSmallestLimitUpTheTree) {
  Write("kubepods/memory.max", "2147483648\n");
  Write("kubepods/pod1/memory.max", "max\n");
  Write("kubepods/pod1/c1/memory.max", "1073741824\n");
  EXPECT_EQ(CgroupMemoryLimitBytes("0::/kubepods/pod1/c1\n", root_),
            size_t{1} << 30);
  EXPECT_EQ(CgroupMemoryLimitBytes("0::/kubepods/pod1\n", root_),
            size_t{2} << 30);
}

TEST_F(CgroupTest, V1MemoryController) {
  Write("memory/a/memory.limit_in_bytes", "9223372036854771712\n");
  Write("memory/a/b/memory.limit_in_bytes", "536870912\n");
  EXPECT_EQ(CgroupMemoryLimitBytes(
                "5:cpu,cpuacct:/a/b\n4:memory:/a/b\n1:name=systemd:/\n", root_),
            size_t{512} << 20);
  EXPECT_EQ(CgroupMemoryLimitBytes("4:memory:/a\n", root_), std::nullopt);
}

TEST_F(CgroupTest, NoLimitAnywhere) {
  Write("memory.max", "max\n");
  EXPECT_EQ(CgroupMemoryLimitBytes("0::/\n", root_), std::nullopt);
  EXPECT_EQ(CgroupMemoryLimitBytes("", root_), std::nullopt);
}

TEST(FileLimitTest, SoftLimitRaisedToHard) {
  const size_t soft = RaiseFileLimit();
  EXPECT_GT(soft, 0u);
  EXPECT_EQ(RaiseFileLimit(), soft);
  EXPECT_GT(OpenFileDescriptors(), 2u);
  EXPECT_LT(OpenFileDescriptors(), soft);
}

}  // namespace
}  // namespace relu::service

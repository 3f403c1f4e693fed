// relu.v1.ReluService against a real server on 127.0.0.1:0.
#include <atomic>
#include <random>
#include <thread>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/service/service_test_util.h"
#include "tests/testing/golden.h"

namespace relu::service {
namespace {

using ::relu::testing::BitsToBytes;
using ::relu::testing::BytesToBits;
using ::relu::testing::SameResult;
using ::testing::HasSubstr;

v1::ApplyReLURequest MakeRequest(kernel::DType dtype,
                                 const std::vector<int64_t>& shape,
                                 std::string data,
                                 const kernel::Params& params = {}) {
  v1::ApplyReLURequest request;
  request.mutable_tensor()->set_dtype(static_cast<v1::DataType>(dtype));
  for (int64_t dim : shape) request.mutable_tensor()->add_shape(dim);
  request.mutable_tensor()->set_data(std::move(data));
  if (params.max_value)
    request.mutable_params()->set_max_value(*params.max_value);
  request.mutable_params()->set_negative_slope(params.negative_slope);
  request.mutable_params()->set_threshold(params.threshold);
  return request;
}

std::string Floats(std::vector<float> values) {
  return std::string(reinterpret_cast<const char*>(values.data()),
                     values.size() * sizeof(float));
}

// What the scalar reference path computes for `request`.
std::string Reference(const v1::ApplyReLURequest& request) {
  const auto dtype = static_cast<kernel::DType>(request.tensor().dtype());
  std::string out(request.tensor().data().size(), '\0');
  kernel::Params params;
  if (request.params().has_max_value()) {
    params.max_value = request.params().max_value();
  }
  params.negative_slope = request.params().negative_slope();
  params.threshold = request.params().threshold();
  kernel::ApplyOnThread(kernel::Isa::kScalar, dtype, params,
                        request.tensor().data().data(), out.data(),
                        out.size() / kernel::ElementSize(dtype));
  return out;
}

class ReluServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fixture_.start_status().ok()); }
  ServerFixture fixture_;
};

TEST_F(ReluServiceTest, GoldenCasesBitExact) {
  const auto cases = relu::testing::LoadGoldenCases();
  ASSERT_EQ(cases.size(), 100u);
  for (const auto& golden : cases) {
    SCOPED_TRACE(golden.name);
    auto request = MakeRequest(
        golden.dtype, {static_cast<int64_t>(golden.input_bits.size())},
        BitsToBytes(golden.dtype, golden.input_bits), golden.params);
    if (!golden.params.max_value) request.mutable_params()->clear_max_value();
    v1::ApplyReLUResponse response;
    grpc::Status status = fixture_.Call(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.tensor().dtype(), request.tensor().dtype());
    EXPECT_THAT(response.tensor().shape(),
                ::testing::ElementsAre(golden.input_bits.size()));
    auto bits = BytesToBits(golden.dtype, response.tensor().data());
    ASSERT_EQ(bits.size(), golden.output_bits.size());
    for (size_t i = 0; i < bits.size(); ++i) {
      EXPECT_TRUE(SameResult(golden.dtype, bits[i], golden.output_bits[i]))
          << "element " << i << " input " << golden.input[i] << " expected "
          << golden.output[i] << " got 0x" << std::hex << bits[i];
    }
  }
}

TEST_F(ReluServiceTest, ScalarAndMultiDimensionalShapes) {
  // An empty shape is a scalar: one element.
  v1::ApplyReLUResponse response;
  ASSERT_TRUE(
      fixture_
          .Call(MakeRequest(kernel::DType::kFloat32, {}, Floats({-3.0f})),
                &response)
          .ok());
  EXPECT_EQ(response.tensor().shape_size(), 0);
  EXPECT_EQ(response.tensor().data(), Floats({0.0f}));

  auto request = MakeRequest(kernel::DType::kFloat32, {2, 1, 3},
                             Floats({-1, 2, -3, 4, -5, 6}), {6.0, 0.5, 0.0});
  ASSERT_TRUE(fixture_.Call(request, &response).ok());
  EXPECT_THAT(response.tensor().shape(), ::testing::ElementsAre(2, 1, 3));
  EXPECT_EQ(response.tensor().data(), Floats({-0.5, 2, -1.5, 4, -2.5, 6}));
}

TEST_F(ReluServiceTest, EmptyTensorIsValid) {
  v1::ApplyReLUResponse response;
  grpc::Status status = fixture_.Call(
      MakeRequest(kernel::DType::kFloat64, {3, 0, 2}, ""), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(response.tensor().shape(), ::testing::ElementsAre(3, 0, 2));
  EXPECT_EQ(response.tensor().data(), "");
  EXPECT_EQ(response.tensor().dtype(), v1::DATA_TYPE_FLOAT64);
}

struct BadInput {
  std::string name;
  v1::ApplyReLURequest request;
  std::string message;  // exact
};

std::vector<BadInput> BadInputs() {
  const auto f32 = kernel::DType::kFloat32;
  std::vector<BadInput> rows;
  rows.push_back({"negative max_value",
                  MakeRequest(f32, {1}, Floats({1}), {-1.0, 0, 0}),
                  "max_value of a ReLU layer cannot be a negative value. "
                  "Received: max_value=-1.0"});
  rows.push_back(
      {"NaN max_value",
       MakeRequest(f32, {1}, Floats({1}), {std::nan(""), 0, 0}),
       "max_value of a ReLU layer cannot be NaN. Received: max_value=nan"});
  rows.push_back({"negative slope",
                  MakeRequest(f32, {1}, Floats({1}), {std::nullopt, -1e-5, 0}),
                  "negative_slope of a ReLU layer cannot be a negative value. "
                  "Received: negative_slope=-1e-05"});
  rows.push_back(
      {"negative threshold",
       MakeRequest(f32, {1}, Floats({1}), {std::nullopt, 0, -HUGE_VAL}),
       "threshold of a ReLU layer cannot be a negative value. "
       "Received: threshold=-inf"});
  rows.push_back(
      {"params before tensor: max_value wins",
       MakeRequest(kernel::DType::kFloat32, {-1}, "", {-2.0, -1, -1}),
       "max_value of a ReLU layer cannot be a negative value. "
       "Received: max_value=-2.0"});
  v1::ApplyReLURequest missing;
  rows.push_back(
      {"missing tensor", missing, "tensor is missing from the request"});
  auto unspecified = MakeRequest(f32, {1}, Floats({1}));
  unspecified.mutable_tensor()->set_dtype(v1::DATA_TYPE_UNSPECIFIED);
  rows.push_back({"unspecified dtype", unspecified,
                  "tensor.dtype is DATA_TYPE_UNSPECIFIED (0); set "
                  "DATA_TYPE_FLOAT32, DATA_TYPE_FLOAT64, DATA_TYPE_FLOAT16 or "
                  "DATA_TYPE_BFLOAT16"});
  auto unknown = MakeRequest(f32, {1}, Floats({1}));
  unknown.mutable_tensor()->set_dtype(static_cast<v1::DataType>(9));
  rows.push_back({"unknown dtype", unknown,
                  "tensor.dtype 9 is not a known DataType; use 1 (FLOAT32), 2 "
                  "(FLOAT64), 3 (FLOAT16) or 4 (BFLOAT16)"});
  rows.push_back({"negative dimension", MakeRequest(f32, {2, -3}, ""),
                  "tensor.shape[1] is -3; dimensions must be >= 0 (shape [2, "
                  "-3])"});
  rows.push_back({"element count overflows",
                  MakeRequest(f32, {1LL << 40, 1LL << 40}, ""),
                  "tensor.shape [1099511627776, 1099511627776] has too many "
                  "elements: their size in bytes overflows 64 bits"});
  rows.push_back({"element count wraps to zero in 128 bits",
                  MakeRequest(f32, {1LL << 62, 1LL << 62, 1LL << 62, 4}, ""),
                  "tensor.shape [4611686018427387904, 4611686018427387904, "
                  "4611686018427387904, 4] has too many elements: their size "
                  "in bytes overflows 64 bits"});
  rows.push_back({"data too short", MakeRequest(f32, {2, 3}, Floats({1, 2})),
                  "tensor.data has 8 bytes; shape [2, 3] of float32 needs 24 "
                  "(6 elements x 4 bytes)"});
  rows.push_back({"data too long",
                  MakeRequest(kernel::DType::kBFloat16, {}, "abcd"),
                  "tensor.data has 4 bytes; shape [] of bfloat16 needs 2 (1 "
                  "elements x 2 bytes)"});
  return rows;
}

TEST_F(ReluServiceTest, EveryBadInputGetsInvalidArgumentAndServerServesOn) {
  for (const BadInput& row : BadInputs()) {
    SCOPED_TRACE(row.name);
    v1::ApplyReLUResponse response;
    grpc::Status status = fixture_.Call(row.request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), row.message);
  }
  v1::ApplyReLUResponse response;
  ASSERT_TRUE(fixture_
                  .Call(MakeRequest(kernel::DType::kFloat32, {4},
                                    Floats({-5, -2, 0, 3})),
                        &response)
                  .ok());
  EXPECT_EQ(response.tensor().data(), Floats({0, 0, 0, 3}));
}

TEST_F(ReluServiceTest, DeadlineAlreadyPassed) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() -
                       std::chrono::seconds(1));
  v1::ApplyReLUResponse response;
  grpc::Status status = fixture_.stub().ApplyReLU(
      &context, MakeRequest(kernel::DType::kFloat32, {1}, Floats({1})),
      &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

// Random dtype, shape and params; parameters valid.
v1::ApplyReLURequest RandomRequest(std::mt19937_64& rng) {
  const kernel::DType dtypes[] = {
      kernel::DType::kFloat32, kernel::DType::kFloat64, kernel::DType::kFloat16,
      kernel::DType::kBFloat16};
  const kernel::DType dtype = dtypes[rng() % 4];
  std::vector<int64_t> shape;
  size_t elements = 1;
  const int rank = static_cast<int>(rng() % 4);
  for (int i = 0; i < rank; ++i) {
    shape.push_back(static_cast<int64_t>(rng() % (i == 0 ? 300 : 17)));
    elements *= shape.back();
  }
  std::string data(elements * kernel::ElementSize(dtype), '\0');
  for (char& byte : data) byte = static_cast<char>(rng());
  kernel::Params params;
  const double picks[] = {0.0, 0.5, 1.0, 2.5, 6.0, 1e-3};
  if (rng() % 2) params.max_value = picks[rng() % 6];
  if (rng() % 2) params.negative_slope = picks[rng() % 6];
  if (rng() % 2) params.threshold = picks[rng() % 6];
  return MakeRequest(dtype, shape, std::move(data), params);
}

TEST_F(ReluServiceTest, SixtyFourConcurrentCallersGetBitExactAnswers) {
  constexpr int kCallers = 64;
  constexpr int kCallsEach = 20;
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      std::mt19937_64 rng(c);
      for (int i = 0; i < kCallsEach; ++i) {
        auto request = RandomRequest(rng);
        if (rng() % 2) request.mutable_params()->clear_max_value();
        const std::string expected = Reference(request);
        v1::ApplyReLUResponse response;
        if (!fixture_.Call(request, &response).ok()) {
          ++failed;
          continue;
        }
        const auto dtype = static_cast<kernel::DType>(request.tensor().dtype());
        auto got = BytesToBits(dtype, response.tensor().data());
        auto want = BytesToBits(dtype, expected);
        bool same =
            got.size() == want.size() &&
            response.tensor().shape_size() == request.tensor().shape_size();
        for (size_t k = 0; same && k < got.size(); ++k) {
          same = SameResult(dtype, got[k], want[k]);
        }
        if (!same) ++wrong;
      }
    });
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
}

// With --accept-compression, a gzip-compressed request (the client's choice;
// gRPC decompresses it before the handler) gets the same answer, small and
// large. (Refused by default: tests/service/limits_test.cc.)
TEST(ReluServiceCompressionTest, CompressedRequestsBitExact) {
  ServerOptions options;
  options.accept_compression = true;
  ServerFixture fixture_(options);
  ASSERT_TRUE(fixture_.start_status().ok());
  std::mt19937_64 rng(11);
  for (size_t elements : {size_t{16}, size_t{300000}}) {
    std::string data(elements * 4, '\0');
    for (char& byte : data)
      byte = static_cast<char>(rng() % 7);  // compressible
    const auto request =
        MakeRequest(kernel::DType::kFloat32, {static_cast<int64_t>(elements)},
                    std::move(data));
    grpc::ClientContext context;
    context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    v1::ApplyReLUResponse response;
    grpc::Status status =
        fixture_.stub().ApplyReLU(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.tensor().data(), Reference(request)) << elements;
  }
}

// Tensors of several MiB arrive in many slices (elements split across
// them) and leave in several response slices, 25 MiB ones through the
// kernel's streaming stores: still bit-exact.
TEST_F(ReluServiceTest, LargeTensorsBitExact) {
  std::mt19937_64 rng(9);
  const kernel::DType dtypes[] = {
      kernel::DType::kFloat32, kernel::DType::kFloat64, kernel::DType::kFloat16,
      kernel::DType::kBFloat16};
  for (kernel::DType dtype : dtypes) {
    for (size_t bytes :
         {size_t{1} << 20, (size_t{3} << 20) + 24, (size_t{25} << 20) + 8}) {
      const size_t elements = bytes / kernel::ElementSize(dtype) + 1;
      std::string data(elements * kernel::ElementSize(dtype), '\0');
      for (char& byte : data) byte = static_cast<char>(rng());
      const auto request = MakeRequest(dtype, {static_cast<int64_t>(elements)},
                                       std::move(data), {6.0, 0.25, 0.5});
      const std::string expected = Reference(request);
      v1::ApplyReLUResponse response;
      grpc::Status status = fixture_.Call(request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      auto got = BytesToBits(dtype, response.tensor().data());
      auto want = BytesToBits(dtype, expected);
      ASSERT_EQ(got.size(), want.size());
      size_t wrong = 0;
      for (size_t k = 0; k < got.size(); ++k) {
        wrong += !SameResult(dtype, got[k], want[k]);
      }
      EXPECT_EQ(wrong, 0u) << kernel::DTypeName(dtype) << " " << elements;
      EXPECT_THAT(response.tensor().shape(),
                  ::testing::ElementsAre(static_cast<int64_t>(elements)));
    }
  }
}

grpc::health::v1::HealthCheckResponse::ServingStatus Check(
    grpc::Channel* channel, const std::string& service,
    grpc::Status* status_out = nullptr) {
  auto stub = grpc::health::v1::Health::NewStub(
      std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}));
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (status_out) *status_out = status;
  return response.status();
}

TEST_F(ReluServiceTest, HealthCheck) {
  using grpc::health::v1::HealthCheckResponse;
  EXPECT_EQ(Check(fixture_.channel().get(), ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Check(fixture_.channel().get(), "relu.v1.ReluService"),
            HealthCheckResponse::SERVING);
  EXPECT_EQ(Check(fixture_.channel().get(), "inference.GRPCInferenceService"),
            HealthCheckResponse::SERVING);
  grpc::Status status;
  Check(fixture_.channel().get(), "no.such.Service", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(ReluServiceDrainTest, WatchSeesNotServingAndNewCallsAreRefused) {
  using grpc::health::v1::HealthCheckResponse;
  ServerFixture fixture;
  ASSERT_TRUE(fixture.start_status().ok());
  auto health = grpc::health::v1::Health::NewStub(fixture.channel());
  grpc::ClientContext watch_context;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("relu.v1.ReluService");
  auto watch = health->Watch(&watch_context, request);
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);

  std::thread drainer([&] { EXPECT_EQ(fixture.server().Drain(), 0u); });
  // Watch reports NOT_SERVING as the drain starts (the stream may then end).
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);
  drainer.join();
  watch_context.TryCancel();
  watch->Finish();

  v1::ApplyReLUResponse response;
  grpc::Status status = fixture.Call(
      MakeRequest(kernel::DType::kFloat32, {1}, Floats({1})), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(ReluServiceOverloadTest, SmallQueueRefusesWithResourceExhausted) {
  ServerOptions options;
  options.batching.max_queue_requests = 2;
  options.batching.max_batch_requests = 1;
  options.kernel_threads = 1;
  options.batching.run_inline_when_idle =
      false;  // the test is about the queue limits
  ServerFixture fixture(options);
  ASSERT_TRUE(fixture.start_status().ok());

  // 64 async calls of 1M floats at once: more than one running plus two
  // queued, so some must be refused at once.
  constexpr int kCalls = 64;
  std::vector<float> input(1 << 20);
  for (size_t i = 0; i < input.size(); ++i) input[i] = i % 2 ? 1.5f : -1.5f;
  const auto request =
      MakeRequest(kernel::DType::kFloat32, {1 << 20}, Floats(input));
  std::vector<float> expected_values(input.size());
  for (size_t i = 0; i < input.size(); ++i) {
    expected_values[i] = input[i] > 0 ? input[i] : 0.0f;
  }
  const std::string expected = Floats(expected_values);

  grpc::CompletionQueue cq;
  struct Call {
    grpc::ClientContext context;
    v1::ApplyReLUResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::ApplyReLUResponse>>
        reader;
  };
  std::vector<Call> calls(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    calls[i].reader =
        fixture.stub().AsyncApplyReLU(&calls[i].context, request, &cq);
    calls[i].reader->Finish(&calls[i].response, &calls[i].status, &calls[i]);
  }
  int ok = 0, exhausted = 0, other = 0;
  for (int i = 0; i < kCalls; ++i) {
    void* tag;
    bool done;
    ASSERT_TRUE(cq.Next(&tag, &done));
    Call* call = static_cast<Call*>(tag);
    if (call->status.ok()) {
      ++ok;
      EXPECT_EQ(call->response.tensor().data(), expected);
    } else if (call->status.error_code() ==
               grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
      EXPECT_THAT(call->status.error_message(),
                  HasSubstr("max-queue-requests"));
    } else {
      ++other;
    }
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(exhausted, 0);
  EXPECT_EQ(other, 0);
  // Healthy and correct afterwards.
  using grpc::health::v1::HealthCheckResponse;
  EXPECT_EQ(Check(fixture.channel().get(), ""), HealthCheckResponse::SERVING);
  v1::ApplyReLUResponse response;
  ASSERT_TRUE(fixture.Call(request, &response).ok());
  EXPECT_EQ(response.tensor().data(), expected);
}

}  // namespace
}  // namespace relu::service

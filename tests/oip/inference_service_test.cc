// inference.GRPCInferenceService (the Open Inference Protocol) against a real
// in-process relu-server on 127.0.0.1:0: metadata, ModelInfer against the
// scalar reference and the golden cases, errors worded as ApplyReLU's, and the
// metrics it shares with ApplyReLU.
#include "server/service/inference_service.h"

#include <cmath>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/batching/batch_scheduler.h"
#include "server/metrics/server_metrics.h"
#include "server/service/call_tracker.h"
#include "tests/service/infer_request_util.h"
#include "tests/service/service_test_util.h"
#include "tests/testing/golden.h"
#include "tests/testing/http_client.h"

namespace relu::service {
namespace {

using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using ::relu::testing::BitsToBytes;
using ::relu::testing::BytesToBits;
using ::relu::testing::SameResult;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Floats(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()),
                     values.size() * sizeof(float));
}

void SetDouble(ModelInferRequest& request, const std::string& name,
               double value) {
  (*request.mutable_parameters())[name].set_double_param(value);
}

void SetParams(ModelInferRequest& request, const kernel::Params& params) {
  if (params.max_value) SetDouble(request, "max_value", *params.max_value);
  SetDouble(request, "negative_slope", params.negative_slope);
  SetDouble(request, "threshold", params.threshold);
}

// The scalar reference path on raw bytes.
std::string Reference(kernel::DType dtype, const kernel::Params& params,
                      const std::string& in) {
  std::string out(in.size(), '\0');
  kernel::ApplyOnThread(kernel::Isa::kScalar, dtype, params, in.data(),
                        out.data(), in.size() / kernel::ElementSize(dtype));
  return out;
}

class InferenceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fixture_.start_status().ok());
    stub_ = GRPCInferenceService::NewStub(fixture_.channel());
  }

  grpc::Status Infer(const ModelInferRequest& request,
                     ModelInferResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    return stub_->ModelInfer(&context, request, response);
  }

  ServerFixture fixture_;
  std::unique_ptr<GRPCInferenceService::Stub> stub_;
};

TEST_F(InferenceServiceTest, LiveReadyAndServerMetadata) {
  {
    grpc::ClientContext context;
    inference::ServerLiveResponse response;
    ASSERT_TRUE(stub_->ServerLive(&context, {}, &response).ok());
    EXPECT_TRUE(response.live());
  }
  {
    grpc::ClientContext context;
    inference::ServerReadyResponse response;
    ASSERT_TRUE(stub_->ServerReady(&context, {}, &response).ok());
    EXPECT_TRUE(response.ready());
  }
  {
    grpc::ClientContext context;
    inference::ServerMetadataResponse response;
    ASSERT_TRUE(stub_->ServerMetadata(&context, {}, &response).ok());
    EXPECT_EQ(response.name(), "relu-serve");
    EXPECT_EQ(response.version(), RELU_VERSION);
    EXPECT_EQ(response.extensions_size(), 0);
  }
}

TEST_F(InferenceServiceTest, ModelReadyAndMetadataForReluOnly) {
  for (const char* version : {"", "1"}) {
    SCOPED_TRACE(version);
    inference::ModelReadyRequest ready_request;
    ready_request.set_name("relu");
    ready_request.set_version(version);
    grpc::ClientContext ready_context;
    inference::ModelReadyResponse ready;
    ASSERT_TRUE(stub_->ModelReady(&ready_context, ready_request, &ready).ok());
    EXPECT_TRUE(ready.ready());

    inference::ModelMetadataRequest request;
    request.set_name("relu");
    request.set_version(version);
    grpc::ClientContext context;
    inference::ModelMetadataResponse response;
    ASSERT_TRUE(stub_->ModelMetadata(&context, request, &response).ok());
    EXPECT_EQ(response.name(), "relu");
    EXPECT_THAT(response.versions(), ElementsAre("1"));
    EXPECT_EQ(response.platform(), "relu-serve_cpp");
    ASSERT_EQ(response.inputs_size(), 1);
    EXPECT_EQ(response.inputs(0).name(), "input");
    EXPECT_EQ(response.inputs(0).datatype(), "FP32");
    EXPECT_THAT(response.inputs(0).shape(), ElementsAre(-1));
    ASSERT_EQ(response.outputs_size(), 1);
    EXPECT_EQ(response.outputs(0).name(), "output");
    EXPECT_EQ(response.outputs(0).datatype(), "FP32");
    EXPECT_THAT(response.outputs(0).shape(), ElementsAre(-1));
  }
  struct Row {
    const char* name;
    const char* version;
    const char* message;
  };
  for (const Row& row : {Row{"resnet", "",
                             "model \"resnet\" is not served here; the only "
                             "model is \"relu\""},
                         Row{"relu", "2",
                             "model \"relu\" has no version \"2\"; the only "
                             "version is \"1\""}}) {
    SCOPED_TRACE(row.name);
    inference::ModelReadyRequest ready_request;
    ready_request.set_name(row.name);
    ready_request.set_version(row.version);
    grpc::ClientContext ready_context;
    inference::ModelReadyResponse ready;
    grpc::Status status =
        stub_->ModelReady(&ready_context, ready_request, &ready);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(status.error_message(), row.message);

    inference::ModelMetadataRequest request;
    request.set_name(row.name);
    request.set_version(row.version);
    grpc::ClientContext context;
    inference::ModelMetadataResponse response;
    status = stub_->ModelMetadata(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(status.error_message(), row.message);

    ModelInferRequest infer = MakeInfer("FP32", {1});
    infer.set_model_name(row.name);
    infer.set_model_version(row.version);
    infer.add_raw_input_contents(Floats({1}));
    ModelInferResponse infer_response;
    status = Infer(infer, &infer_response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(status.error_message(), row.message);
  }
}

TEST_F(InferenceServiceTest, RawInputGivesRawOutputOfEveryDatatype) {
  const kernel::Params params{6.0, 0.25, 1.5};
  const std::pair<const char*, kernel::DType> datatypes[] = {
      {"FP32", kernel::DType::kFloat32},
      {"FP64", kernel::DType::kFloat64},
      {"FP16", kernel::DType::kFloat16},
      {"BF16", kernel::DType::kBFloat16}};
  for (const auto& [datatype, dtype] : datatypes) {
    SCOPED_TRACE(datatype);
    // 2 x 3 x 7 elements of assorted bit patterns.
    const size_t n = 42;
    std::string data(n * kernel::ElementSize(dtype), '\0');
    for (size_t i = 0; i < data.size(); ++i) {
      data[i] = static_cast<char>(i * 37 + 11);
    }
    ModelInferRequest request = MakeInfer(datatype, {2, 3, 7});
    request.set_id("call-7");
    SetParams(request, params);
    request.add_raw_input_contents(data);
    ModelInferResponse response;
    grpc::Status status = Infer(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.model_name(), "relu");
    EXPECT_EQ(response.model_version(), "1");
    EXPECT_EQ(response.id(), "call-7");
    ASSERT_EQ(response.outputs_size(), 1);
    EXPECT_EQ(response.outputs(0).name(), "output");
    EXPECT_EQ(response.outputs(0).datatype(), datatype);
    EXPECT_THAT(response.outputs(0).shape(), ElementsAre(2, 3, 7));
    EXPECT_FALSE(response.outputs(0).has_contents());
    ASSERT_EQ(response.raw_output_contents_size(), 1);
    const std::string expected = Reference(dtype, params, data);
    const auto got = BytesToBits(dtype, response.raw_output_contents(0));
    const auto want = BytesToBits(dtype, expected);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(SameResult(dtype, got[i], want[i])) << "element " << i;
    }
  }
}

// Raw tensors of several MiB arrive in many slices (elements split across
// them) and leave in several response slices, read and written by the
// kernel in one pass; an id, parameters and a second input field around
// the data on the wire.
TEST_F(InferenceServiceTest, LargeRawTensorsBitExact) {
  const kernel::Params params{6.0, 0.25, 0.5};
  std::mt19937_64 rng(5);
  const std::pair<const char*, kernel::DType> datatypes[] = {
      {"FP32", kernel::DType::kFloat32},
      {"FP64", kernel::DType::kFloat64},
      {"FP16", kernel::DType::kFloat16},
      {"BF16", kernel::DType::kBFloat16}};
  for (const auto& [datatype, dtype] : datatypes) {
    for (size_t bytes : {size_t{1} << 20, (size_t{3} << 20) + 24}) {
      SCOPED_TRACE(std::string(datatype) + " " + std::to_string(bytes));
      const size_t n = bytes / kernel::ElementSize(dtype) + 1;
      std::string data(n * kernel::ElementSize(dtype), '\0');
      for (char& byte : data) byte = static_cast<char>(rng());
      ModelInferRequest request =
          MakeInfer(datatype, {static_cast<int64_t>(n)});
      request.set_id("large");
      SetParams(request, params);
      request.add_raw_input_contents(data);
      ModelInferResponse response;
      grpc::Status status = Infer(request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      EXPECT_EQ(response.id(), "large");
      EXPECT_THAT(response.outputs(0).shape(),
                  ElementsAre(static_cast<int64_t>(n)));
      ASSERT_EQ(response.raw_output_contents_size(), 1);
      const auto got = BytesToBits(dtype, response.raw_output_contents(0));
      const auto want = BytesToBits(dtype, Reference(dtype, params, data));
      ASSERT_EQ(got.size(), want.size());
      size_t wrong = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        wrong += !SameResult(dtype, got[i], want[i]);
      }
      EXPECT_EQ(wrong, 0u);
    }
  }
}

TEST_F(InferenceServiceTest, TypedInputGivesTypedOutput) {
  ModelInferRequest request = MakeInfer("FP32", {2, 2});
  SetDouble(request, "threshold", 1.0);
  for (float v : {-2.0f, 0.5f, 1.0f, 3.0f}) {
    request.mutable_inputs(0)->mutable_contents()->add_fp32_contents(v);
  }
  ModelInferResponse response;
  ASSERT_TRUE(Infer(request, &response).ok());
  EXPECT_EQ(response.raw_output_contents_size(), 0);
  ASSERT_EQ(response.outputs_size(), 1);
  EXPECT_THAT(response.outputs(0).contents().fp32_contents(),
              ElementsAre(0.0f, 0.0f, 0.0f, 3.0f));

  ModelInferRequest request64 = MakeInfer("FP64", {3});
  SetDouble(request64, "negative_slope", 0.5);
  (*request64.mutable_parameters())["max_value"].set_int64_param(2);
  for (double v : {-4.0, 1.5, 9.0}) {
    request64.mutable_inputs(0)->mutable_contents()->add_fp64_contents(v);
  }
  ModelInferResponse response64;
  ASSERT_TRUE(Infer(request64, &response64).ok());
  EXPECT_EQ(response64.raw_output_contents_size(), 0);
  EXPECT_EQ(response64.outputs(0).datatype(), "FP64");
  EXPECT_THAT(response64.outputs(0).contents().fp64_contents(),
              ElementsAre(-2.0, 1.5, 2.0));
}

TEST_F(InferenceServiceTest, GoldenCasesBitExactRawAndTyped) {
  const auto cases = relu::testing::LoadGoldenCases();
  ASSERT_EQ(cases.size(), 100u);
  for (const auto& golden : cases) {
    SCOPED_TRACE(golden.name);
    const std::string datatype = OipDatatype(golden.dtype);
    const auto n = static_cast<int64_t>(golden.input_bits.size());
    ModelInferRequest request = MakeInfer(datatype, {n});
    SetParams(request, golden.params);
    ModelInferRequest typed = request;
    request.add_raw_input_contents(
        BitsToBytes(golden.dtype, golden.input_bits));
    ModelInferResponse response;
    grpc::Status status = Infer(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.raw_output_contents_size(), 1);
    auto bits = BytesToBits(golden.dtype, response.raw_output_contents(0));
    ASSERT_EQ(bits.size(), golden.output_bits.size());
    for (size_t i = 0; i < bits.size(); ++i) {
      EXPECT_TRUE(SameResult(golden.dtype, bits[i], golden.output_bits[i]))
          << "raw element " << i;
    }

    // The same case through the typed fields, where the datatype has one.
    auto* contents = typed.mutable_inputs(0)->mutable_contents();
    if (golden.dtype == kernel::DType::kFloat32) {
      for (uint64_t b : golden.input_bits) {
        const auto b32 = static_cast<uint32_t>(b);
        float v;
        std::memcpy(&v, &b32, sizeof v);
        contents->add_fp32_contents(v);
      }
    } else if (golden.dtype == kernel::DType::kFloat64) {
      for (uint64_t b : golden.input_bits) {
        double v;
        std::memcpy(&v, &b, sizeof v);
        contents->add_fp64_contents(v);
      }
    } else {
      continue;
    }
    ModelInferResponse typed_response;
    status = Infer(typed, &typed_response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(typed_response.raw_output_contents_size(), 0);
    const auto& out = typed_response.outputs(0).contents();
    std::vector<uint64_t> typed_bits;
    for (float v : out.fp32_contents()) {
      uint32_t b;
      std::memcpy(&b, &v, sizeof b);
      typed_bits.push_back(b);
    }
    for (double v : out.fp64_contents()) {
      uint64_t b;
      std::memcpy(&b, &v, sizeof b);
      typed_bits.push_back(b);
    }
    ASSERT_EQ(typed_bits.size(), golden.output_bits.size());
    for (size_t i = 0; i < typed_bits.size(); ++i) {
      EXPECT_TRUE(
          SameResult(golden.dtype, typed_bits[i], golden.output_bits[i]))
          << "typed element " << i;
    }
  }
}

TEST_F(InferenceServiceTest, EmptyTensorAndScalar) {
  ModelInferRequest empty = MakeInfer("BF16", {3, 0});
  ModelInferResponse response;
  ASSERT_TRUE(Infer(empty, &response).ok());
  EXPECT_THAT(response.outputs(0).shape(), ElementsAre(3, 0));
  ASSERT_EQ(response.raw_output_contents_size(), 1);
  EXPECT_EQ(response.raw_output_contents(0), "");

  ModelInferRequest scalar = MakeInfer("FP32", {});
  scalar.add_raw_input_contents(Floats({-3}));
  ModelInferResponse scalar_response;
  ASSERT_TRUE(Infer(scalar, &scalar_response).ok());
  EXPECT_EQ(scalar_response.outputs(0).shape_size(), 0);
  EXPECT_EQ(scalar_response.raw_output_contents(0), Floats({0}));
}

// Each bad ModelInfer request and the ApplyReLU request with the same fault:
// their messages must match, with the field names mapped.
TEST_F(InferenceServiceTest, SameMessagesAsApplyRelu) {
  struct Row {
    const char* name;
    ModelInferRequest infer;
    v1::ApplyReLURequest apply;
  };
  auto apply = [](v1::DataType dtype, std::vector<int64_t> shape,
                  std::string data) {
    v1::ApplyReLURequest r;
    r.mutable_tensor()->set_dtype(dtype);
    for (int64_t d : shape) r.mutable_tensor()->add_shape(d);
    r.mutable_tensor()->set_data(std::move(data));
    return r;
  };
  std::vector<Row> rows;
  {
    Row row{"negative max_value", MakeInfer("FP32", {1}),
            apply(v1::DATA_TYPE_FLOAT32, {1}, Floats({1}))};
    SetDouble(row.infer, "max_value", -1.0);
    row.infer.add_raw_input_contents(Floats({1}));
    row.apply.mutable_params()->set_max_value(-1.0);
    rows.push_back(row);
  }
  {
    Row row{"NaN negative_slope", MakeInfer("FP32", {1}),
            apply(v1::DATA_TYPE_FLOAT32, {1}, Floats({1}))};
    SetDouble(row.infer, "negative_slope",
              std::numeric_limits<double>::quiet_NaN());
    row.infer.add_raw_input_contents(Floats({1}));
    row.apply.mutable_params()->set_negative_slope(
        std::numeric_limits<double>::quiet_NaN());
    rows.push_back(row);
  }
  {
    Row row{"infinite threshold", MakeInfer("FP32", {1}),
            apply(v1::DATA_TYPE_FLOAT32, {1}, Floats({1}))};
    SetDouble(row.infer, "threshold", -INFINITY);
    row.infer.add_raw_input_contents(Floats({1}));
    row.apply.mutable_params()->set_threshold(-INFINITY);
    rows.push_back(row);
  }
  {
    Row row{"short data", MakeInfer("FP32", {2, 3}),
            apply(v1::DATA_TYPE_FLOAT32, {2, 3}, std::string(10, '\0'))};
    row.infer.add_raw_input_contents(std::string(10, '\0'));
    rows.push_back(row);
  }
  {
    Row row{"negative dimension", MakeInfer("FP64", {4, -2}),
            apply(v1::DATA_TYPE_FLOAT64, {4, -2}, "")};
    row.infer.add_raw_input_contents("");
    rows.push_back(row);
  }
  {
    Row row{"overflowing shape", MakeInfer("FP16", {1LL << 40, 1LL << 40}),
            apply(v1::DATA_TYPE_FLOAT16, {1LL << 40, 1LL << 40}, "")};
    row.infer.add_raw_input_contents("");
    rows.push_back(row);
  }
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    v1::ApplyReLUResponse apply_response;
    grpc::Status apply_status = fixture_.Call(row.apply, &apply_response);
    ASSERT_EQ(apply_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    ModelInferResponse response;
    grpc::Status status = Infer(row.infer, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(),
              absl::StrReplaceAll(apply_status.error_message(),
                                  {{"tensor.data", "raw_input_contents[0]"},
                                   {"tensor.shape", "inputs[0].shape"}}));
  }
}

TEST_F(InferenceServiceTest, ProtocolErrorsNameTheField) {
  struct Row {
    const char* name;
    ModelInferRequest request;
    const char* message;
  };
  std::vector<Row> rows;
  {
    ModelInferRequest r = MakeInfer("FP32", {1});
    r.mutable_inputs(0)->set_name("x");
    r.add_raw_input_contents(Floats({1}));
    rows.push_back({"wrong input name", r,
                    "inputs[0] is named \"x\"; model \"relu\" takes one "
                    "input, named \"input\""});
  }
  {
    ModelInferRequest r = MakeInfer("FP32", {1});
    auto* second = r.add_inputs();
    second->set_name("bias");
    rows.push_back({"two inputs", r,
                    "model \"relu\" takes 1 input, named \"input\"; the "
                    "request has 2 [\"input\", \"bias\"]"});
  }
  {
    ModelInferRequest r;
    r.set_model_name("relu");
    rows.push_back({"no input", r,
                    "model \"relu\" takes 1 input, named \"input\"; the "
                    "request has 0 []"});
  }
  {
    ModelInferRequest r = MakeInfer("INT32", {1});
    r.add_raw_input_contents(std::string(4, '\0'));
    rows.push_back({"INT32", r,
                    "inputs[0].datatype is \"INT32\"; model \"relu\" takes "
                    "FP32, FP64, FP16 or BF16"});
  }
  {
    ModelInferRequest r = MakeInfer("fp32", {1});
    r.add_raw_input_contents(Floats({1}));
    rows.push_back({"lower-case datatype", r,
                    "inputs[0].datatype is \"fp32\"; model \"relu\" takes "
                    "FP32, FP64, FP16 or BF16"});
  }
  {
    ModelInferRequest r = MakeInfer("FP32", {1});
    r.add_raw_input_contents(Floats({1}));
    SetDouble(r, "max_val", 6);
    SetDouble(r, "alpha", 6);
    rows.push_back({"unknown parameters", r,
                    "parameters [\"alpha\", \"max_val\"] not known to model "
                    "\"relu\"; it takes max_value, negative_slope and "
                    "threshold"});
  }
  {
    ModelInferRequest r = MakeInfer("FP32", {1});
    r.add_raw_input_contents(Floats({1}));
    (*r.mutable_parameters())["threshold"].set_string_param("1.5");
    rows.push_back({"string parameter", r,
                    "parameters[\"threshold\"] is a string_param; send a "
                    "double_param (or an int64_param)"});
  }
  {
    ModelInferRequest r = MakeInfer("FP32", {1});
    r.add_raw_input_contents(Floats({1}));
    (*r.mutable_parameters())["max_value"];
    rows.push_back({"empty parameter", r,
                    "parameters[\"max_value\"] is empty (no value set); send a "
                    "double_param (or an int64_param)"});
  }
  {
    ModelInferRequest r = MakeInfer("FP32", {2});
    r.add_raw_input_contents(Floats({1, 2}));
    r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
    rows.push_back({"raw and typed", r,
                    "inputs[0].contents.fp32_contents set together with "
                    "raw_input_contents; send the data in one of them"});
  }
  {
    ModelInferRequest r = MakeInfer("FP32", {1});
    r.add_raw_input_contents(Floats({1}));
    r.add_raw_input_contents(Floats({1}));
    rows.push_back(
        {"two raw entries", r, "raw_input_contents has 2 entries for 1 input"});
  }
  {
    ModelInferRequest r = MakeInfer("FP32", {2});
    r.mutable_inputs(0)->mutable_contents()->add_int_contents(1);
    r.mutable_inputs(0)->mutable_contents()->add_int_contents(2);
    rows.push_back({"wrong typed field", r,
                    "inputs[0].contents.int_contents set; FP32 data goes in "
                    "inputs[0].contents.fp32_contents or raw_input_contents"});
  }
  {
    ModelInferRequest r = MakeInfer("FP16", {1});
    r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
    rows.push_back({"FP16 typed", r,
                    "inputs[0].contents.fp32_contents set; FP16 data goes in "
                    "raw_input_contents"});
  }
  {
    ModelInferRequest r = MakeInfer("FP16", {3});
    rows.push_back({"FP16 without data", r,
                    "raw_input_contents (absent) has 0 bytes; shape [3] of "
                    "float16 needs 6 (3 elements x 2 bytes)"});
  }
  {
    ModelInferRequest r = MakeInfer("FP64", {2, 2});
    r.mutable_inputs(0)->mutable_contents()->add_fp64_contents(1);
    rows.push_back({"typed count", r,
                    "inputs[0].contents.fp64_contents has 8 bytes; shape "
                    "[2, 2] of float64 needs 32 (4 elements x 8 bytes)"});
  }
  {
    ModelInferRequest r = MakeInfer("FP32", {1});
    r.add_raw_input_contents(Floats({1}));
    r.add_outputs()->set_name("probabilities");
    rows.push_back({"unknown output", r,
                    "outputs[0] asks for \"probabilities\"; model \"relu\" "
                    "has one output, named \"output\""});
  }
  {
    ModelInferRequest r = MakeInfer("FP32", {1});
    r.add_raw_input_contents(Floats({1}));
    (*r.mutable_inputs(0)->mutable_parameters())["shared_memory_region"]
        .set_string_param("shm0");
    rows.push_back({"shared memory", r,
                    "inputs[0].parameters [\"shared_memory_region\"] are not "
                    "supported (no shared memory; the ReLU parameters go in "
                    "the request's parameters)"});
  }
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    ModelInferResponse response;
    grpc::Status status = Infer(row.request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(), row.message);
  }
  // Asking for the one output by name is fine.
  ModelInferRequest ok = MakeInfer("FP32", {2});
  ok.add_raw_input_contents(Floats({-1, 1}));
  ok.add_outputs()->set_name("output");
  ModelInferResponse response;
  ASSERT_TRUE(Infer(ok, &response).ok());
  EXPECT_EQ(response.raw_output_contents(0), Floats({0, 1}));
}

TEST_F(InferenceServiceTest, DeadlineAlreadyPassed) {
  ModelInferRequest request = MakeInfer("FP32", {1});
  request.add_raw_input_contents(Floats({1}));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() -
                       std::chrono::seconds(1));
  ModelInferResponse response;
  grpc::Status status = stub_->ModelInfer(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

// The value of the relu_requests_total child with these labels in a
// Prometheus text exposition; -1 when absent.
double RequestsTotal(const std::string& exposition, const std::string& method,
                     const std::string& code) {
  size_t pos = 0;
  while ((pos = exposition.find("relu_requests_total{", pos)) !=
         std::string::npos) {
    const size_t end = exposition.find('\n', pos);
    const std::string line = exposition.substr(pos, end - pos);
    pos = end;
    if (line.find("method=\"" + method + "\"") != std::string::npos &&
        line.find("code=\"" + code + "\"") != std::string::npos) {
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return -1;
}

TEST(InferenceServiceMetricsTest, ModelInferCountsInTheSharedMetrics) {
  ServerOptions options;
  options.grpc_address = "127.0.0.1:0";
  options.metrics_address = "127.0.0.1:0";
  options.http_address = "off";
  ReluServer server(options);
  ASSERT_TRUE(server.Start().ok());
  const std::string metrics = server.metrics_address();
  const int metrics_port = std::stoi(metrics.substr(metrics.rfind(':') + 1));
  auto stub = GRPCInferenceService::NewStub(grpc::CreateChannel(
      server.grpc_address(), grpc::InsecureChannelCredentials()));
  auto call = [&](const ModelInferRequest& request) {
    grpc::ClientContext context;
    ModelInferResponse response;
    return stub->ModelInfer(&context, request, &response);
  };
  ModelInferRequest good = MakeInfer("FP32", {3});
  good.add_raw_input_contents(Floats({-1, 0, 1}));
  ModelInferRequest bad = MakeInfer("FP32", {3});
  bad.add_raw_input_contents(Floats({-1}));
  ModelInferRequest unknown = good;
  unknown.set_model_name("other");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call(good).ok());
  EXPECT_EQ(call(bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(call(unknown).error_code(), grpc::StatusCode::NOT_FOUND);

  auto scrape = relu::testing::HttpRequest(metrics_port, "/metrics");
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  const std::string& body = scrape->body;
  EXPECT_EQ(RequestsTotal(body, "ModelInfer", "OK"), 3);
  EXPECT_EQ(RequestsTotal(body, "ModelInfer", "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(RequestsTotal(body, "ModelInfer", "NOT_FOUND"), 1);
  EXPECT_EQ(RequestsTotal(body, "ApplyReLU", "OK"), 0);
  EXPECT_THAT(body, HasSubstr("relu_elements_total{dtype=\"float32\"} 9"));
  EXPECT_THAT(body, HasSubstr("relu_rejected_total{reason=\"invalid\"} 2"));
  EXPECT_THAT(body, HasSubstr("relu_inflight_requests 0"));
}

// The service on its own gRPC server, with a kernel the test holds up: calls
// in flight count in the CallTracker; draining turns readiness off and
// ModelInfer away.
class InferenceDrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port_, 0);
    stub_ = GRPCInferenceService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    Release();
    scheduler_.Drain();
    if (server_) server_->Shutdown();
  }

  // Lets the held kernel run.
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // Waits until the kernel has been entered.
  void WaitForKernel() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return entered_; });
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool released_ = false;
  metrics::ServerMetrics metrics_{metrics::MetricsOptions{"test", "scalar"}};
  batching::BatchScheduler scheduler_{
      batching::BatchSchedulerOptions{},
      [this](const kernel::Segment* segments, size_t count) {
        std::unique_lock<std::mutex> lock(mu_);
        entered_ = true;
        cv_.notify_all();
        cv_.wait(lock, [this] { return released_; });
        for (size_t i = 0; i < count; ++i) {
          const auto& s = segments[i];
          kernel::ApplyOnThread(kernel::Isa::kScalar, s.dtype, s.params, s.in,
                                s.out, s.n);
        }
      },
      batching::Clock::Real(), &metrics_};
  CallTracker calls_;
  Admission admission_{&scheduler_, &metrics_, &calls_};
  InferenceServiceImpl service_{&admission_, &calls_, "9.9.9", size_t{4} << 20};
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<GRPCInferenceService::Stub> stub_;
};

TEST_F(InferenceDrainTest, CallsInFlightCountAndDrainingRefuses) {
  ModelInferRequest request = MakeInfer("FP32", {2});
  request.add_raw_input_contents(Floats({-1, 2}));
  grpc::ClientContext context;
  ModelInferResponse response;
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  grpc::Status status;
  stub_->async()->ModelInfer(&context, &request, &response,
                             [&](grpc::Status s) {
                               std::lock_guard<std::mutex> lock(done_mu);
                               status = s;
                               done = true;
                               done_cv.notify_all();
                             });
  WaitForKernel();
  // The call is held in the kernel: the tracker sees it.
  EXPECT_FALSE(calls_.WaitForNoCalls(std::chrono::steady_clock::now()));

  calls_.StartDraining();
  {
    grpc::ClientContext ready_context;
    inference::ServerReadyResponse ready;
    ASSERT_TRUE(stub_->ServerReady(&ready_context, {}, &ready).ok());
    EXPECT_FALSE(ready.ready());
  }
  {
    inference::ModelReadyRequest model;
    model.set_name("relu");
    grpc::ClientContext ready_context;
    inference::ModelReadyResponse ready;
    ready.set_ready(true);
    ASSERT_TRUE(stub_->ModelReady(&ready_context, model, &ready).ok());
    EXPECT_FALSE(ready.ready());
  }
  {
    grpc::ClientContext live_context;
    inference::ServerLiveResponse live;
    ASSERT_TRUE(stub_->ServerLive(&live_context, {}, &live).ok());
    EXPECT_TRUE(live.live());
  }
  {
    grpc::ClientContext refused_context;
    ModelInferResponse refused;
    grpc::Status s = stub_->ModelInfer(&refused_context, request, &refused);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(s.error_message(), "server is draining");
  }

  // The accepted call is still answered, in full.
  Release();
  {
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return done; });
  }
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.raw_output_contents(0), Floats({0, 2}));
  EXPECT_TRUE(
      calls_.WaitForNoCalls(std::chrono::steady_clock::time_point::max()));
}

}  // namespace
}  // namespace relu::service

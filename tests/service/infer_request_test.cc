// ValidateInferRequest, CheckModel and OipDatatype on ModelInfer messages
// alone, without a server: what a valid request yields (dtype, params,
// elements, bytes, where the data is) and each check's status and message.
#include "server/service/infer_request.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/service/infer_request_util.h"

namespace relu::service {
namespace {

using inference::ModelInferRequest;

void ExpectInvalid(const ModelInferRequest& request,
                   const std::string& message) {
  absl::StatusOr<ValidatedInfer> got = ValidateInferRequest(request);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(got.status().message(), message);
}

TEST(InferRequestTest, RawInputOfEveryDatatype) {
  const struct {
    const char* datatype;
    kernel::DType dtype;
    size_t element_size;
  } rows[] = {{"FP32", kernel::DType::kFloat32, 4},
              {"FP64", kernel::DType::kFloat64, 8},
              {"FP16", kernel::DType::kFloat16, 2},
              {"BF16", kernel::DType::kBFloat16, 2}};
  for (const auto& row : rows) {
    SCOPED_TRACE(row.datatype);
    ModelInferRequest request = MakeInfer(row.datatype, {2, 3});
    request.add_raw_input_contents(std::string(6 * row.element_size, '\0'));
    absl::StatusOr<ValidatedInfer> got = ValidateInferRequest(request);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->dtype, row.dtype);
    EXPECT_EQ(got->elements, 6u);
    EXPECT_EQ(got->bytes, 6 * row.element_size);
    EXPECT_TRUE(got->raw);
    EXPECT_STREQ(OipDatatype(row.dtype), row.datatype);
  }
}

TEST(InferRequestTest, TypedContentsAndParameters) {
  ModelInferRequest request = MakeInfer("FP64", {3});
  for (double v : {-1.0, 0.0, 1.0}) {
    request.mutable_inputs(0)->mutable_contents()->add_fp64_contents(v);
  }
  (*request.mutable_parameters())["max_value"].set_double_param(6.5);
  (*request.mutable_parameters())["threshold"].set_int64_param(2);
  absl::StatusOr<ValidatedInfer> got = ValidateInferRequest(request);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->raw);
  EXPECT_EQ(got->elements, 3u);
  EXPECT_EQ(got->bytes, 24u);
  ASSERT_TRUE(got->params.max_value.has_value());
  EXPECT_EQ(*got->params.max_value, 6.5);
  EXPECT_EQ(got->params.negative_slope, 0.0);
  EXPECT_EQ(got->params.threshold, 2.0);
}

TEST(InferRequestTest, EmptyTensorAndScalar) {
  ModelInferRequest empty = MakeInfer("FP16", {0, 4});
  absl::StatusOr<ValidatedInfer> got = ValidateInferRequest(empty);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->elements, 0u);
  EXPECT_EQ(got->bytes, 0u);

  ModelInferRequest scalar = MakeInfer("FP32", {});
  scalar.mutable_inputs(0)->mutable_contents()->add_fp32_contents(-2);
  got = ValidateInferRequest(scalar);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->elements, 1u);
}

TEST(InferRequestTest, ModelAndVersion) {
  EXPECT_TRUE(CheckModel("relu", "").ok());
  EXPECT_TRUE(CheckModel("relu", "1").ok());
  absl::Status other = CheckModel("resnet", "");
  EXPECT_EQ(other.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(other.message(),
            "model \"resnet\" is not served here; the only model is \"relu\"");
  absl::Status version = CheckModel("relu", "2");
  EXPECT_EQ(version.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(version.message(),
            "model \"relu\" has no version \"2\"; the only version is \"1\"");

  ModelInferRequest request = MakeInfer("FP32", {1});
  request.set_model_version("2");
  EXPECT_EQ(ValidateInferRequest(request).status(), version);
}

TEST(InferRequestTest, ChecksInOrderWithTheirMessages) {
  // The model's parameters are checked before the datatype: both are wrong
  // here and the parameter is reported.
  ModelInferRequest request = MakeInfer("INT8", {1});
  (*request.mutable_parameters())["max_value"].set_double_param(-1);
  ExpectInvalid(request,
                "max_value of a ReLU layer cannot be a negative value. "
                "Received: max_value=-1.0");

  request = MakeInfer("FP32", {1});
  request.add_raw_input_contents(std::string(4, '\0'));
  (*request.mutable_parameters())["negative_slope"].set_bool_param(true);
  ExpectInvalid(request,
                "parameters[\"negative_slope\"] is a bool_param; send a "
                "double_param (or an int64_param)");

  request = MakeInfer("FP32", {1});
  request.add_raw_input_contents(std::string(4, '\0'));
  request.add_outputs()->set_name("output");
  request.add_outputs()->set_name("output");
  ExpectInvalid(request,
                "model \"relu\" has 1 output, named \"output\"; the request "
                "asks for 2");

  request = MakeInfer("FP32", {1});
  request.add_raw_input_contents(std::string(4, '\0'));
  auto* output = request.add_outputs();
  output->set_name("output");
  (*output->mutable_parameters())["binary_data"].set_bool_param(true);
  ExpectInvalid(request,
                "outputs[0].parameters [\"binary_data\"] are not supported");

  request = MakeInfer("FP32", {2, 3});
  request.add_raw_input_contents(std::string(20, '\0'));
  ExpectInvalid(request,
                "raw_input_contents[0] has 20 bytes; shape [2, 3] of float32 "
                "needs 24 (6 elements x 4 bytes)");

  request = MakeInfer("FP32", {2, -1});
  request.add_raw_input_contents(std::string(8, '\0'));
  EXPECT_EQ(ValidateInferRequest(request).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace relu::service

// ValidateParams (Keras messages and order), PythonFloatRepr, ISA names.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "server/kernel/relu_kernel.h"

namespace relu::kernel {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

Params Make(std::optional<double> m, double s, double t) {
  Params p;
  p.max_value = m;
  p.negative_slope = s;
  p.threshold = t;
  return p;
}

TEST(ValidateParamsTest, AcceptsValid) {
  EXPECT_EQ(ValidateParams(Make(std::nullopt, 0, 0)), "");
  EXPECT_EQ(ValidateParams(Make(6.0, 0.1, 2.5)), "");
  EXPECT_EQ(ValidateParams(Make(-0.0, -0.0, -0.0)), "");
  EXPECT_EQ(ValidateParams(Make(kInf, kInf, kInf)), "");
  EXPECT_EQ(ValidateParams(Make(0.0, 0.0, 0.0)), "");
}

TEST(ValidateParamsTest, KerasMessages) {
  EXPECT_EQ(ValidateParams(Make(-1.0, 0, 0)),
            "max_value of a ReLU layer cannot be a negative value. Received: "
            "max_value=-1.0");
  EXPECT_EQ(ValidateParams(Make(std::nullopt, -1e-5, 0)),
            "negative_slope of a ReLU layer cannot be a negative value. "
            "Received: negative_slope=-1e-05");
  EXPECT_EQ(ValidateParams(Make(std::nullopt, -0.1, 0)),
            "negative_slope of a ReLU layer cannot be a negative value. "
            "Received: negative_slope=-0.1");
  EXPECT_EQ(ValidateParams(Make(std::nullopt, 0, -1.0)),
            "threshold of a ReLU layer cannot be a negative value. Received: "
            "threshold=-1.0");
  EXPECT_EQ(ValidateParams(Make(std::nullopt, 0, kNaN)),
            "threshold of a ReLU layer cannot be NaN. Received: threshold=nan");
  EXPECT_EQ(ValidateParams(Make(kNaN, 0, 0)),
            "max_value of a ReLU layer cannot be NaN. Received: max_value=nan");
  EXPECT_EQ(ValidateParams(Make(std::nullopt, kNaN, 0)),
            "negative_slope of a ReLU layer cannot be NaN. Received: "
            "negative_slope=nan");
  EXPECT_EQ(ValidateParams(Make(-kInf, 0, 0)),
            "max_value of a ReLU layer cannot be a negative value. Received: "
            "max_value=-inf");
}

TEST(ValidateParamsTest, FirstFailureWinsInKerasOrder) {
  EXPECT_EQ(ValidateParams(Make(-2.0, -1.0, -1.0)),
            "max_value of a ReLU layer cannot be a negative value. Received: "
            "max_value=-2.0");
  EXPECT_EQ(ValidateParams(Make(kNaN, -1.0, kNaN)),
            "max_value of a ReLU layer cannot be NaN. Received: max_value=nan");
  EXPECT_EQ(ValidateParams(Make(1.0, -3.5, -1.0)),
            "negative_slope of a ReLU layer cannot be a negative value. "
            "Received: negative_slope=-3.5");
  EXPECT_EQ(ValidateParams(Make(std::nullopt, kNaN, -1.0)),
            "negative_slope of a ReLU layer cannot be NaN. Received: "
            "negative_slope=nan");
  EXPECT_EQ(ValidateParams(Make(std::nullopt, 0.5, -1e300)),
            "threshold of a ReLU layer cannot be a negative value. Received: "
            "threshold=-1e+300");
}

TEST(PythonFloatReprTest, MatchesPython) {
  const std::pair<double, const char*> cases[] = {
      {-1.0, "-1.0"},
      {-1e-05, "-1e-05"},
      {1e-05, "1e-05"},
      {0.0001, "0.0001"},
      {-0.0001, "-0.0001"},
      {0.1, "0.1"},
      {-0.1, "-0.1"},
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {kNaN, "nan"},
      {-kNaN, "nan"},
      {kInf, "inf"},
      {-kInf, "-inf"},
      {1e16, "1e+16"},
      {1e15, "1000000000000000.0"},
      {123456789012345680.0, "1.2345678901234568e+17"},
      {9999999999999998.0, "9999999999999998.0"},
      {-2.5, "-2.5"},
      {100.0, "100.0"},
      {1.5e-7, "1.5e-07"},
      {0.30000000000000004, "0.30000000000000004"},
      {1e300, "1e+300"},
      {-1e-300, "-1e-300"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {123.456, "123.456"},
      {0.00012345, "0.00012345"},
      {1.0 / 3.0, "0.3333333333333333"},
  };
  for (const auto& [value, text] : cases) {
    EXPECT_EQ(PythonFloatRepr(value), text);
  }
}

TEST(IsaTest, NamesRoundTrip) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    EXPECT_EQ(ParseIsa(IsaName(isa)), isa);
  }
  EXPECT_EQ(ParseIsa("sse"), std::nullopt);
  EXPECT_EQ(ParseIsa(""), std::nullopt);
  EXPECT_TRUE(IsaSupported(Isa::kScalar));
  EXPECT_TRUE(IsaSupported(DefaultIsa()));
}

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(ElementSize(DType::kFloat32), 4u);
  EXPECT_EQ(ElementSize(DType::kFloat64), 8u);
  EXPECT_EQ(ElementSize(DType::kFloat16), 2u);
  EXPECT_EQ(ElementSize(DType::kBFloat16), 2u);
  EXPECT_STREQ(DTypeName(DType::kBFloat16), "bfloat16");
  EXPECT_STREQ(DTypeName(DType::kFloat16), "float16");
}

}  // namespace
}  // namespace relu::kernel

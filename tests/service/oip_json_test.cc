// The HTTP front door's JSON numbers (server/service/oip_json.h): every FP16
// and BF16 value, and a sweep of FP32 and FP64 values, written and read back
// to the same bits, in the fewest digits; decimal input rounded once; the
// request decoder's field checks.
#include "server/service/oip_json.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "common/float_digits.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relu::service {
namespace {

using ::testing::HasSubstr;

uint64_t Read(kernel::DType dtype, const std::string& token) {
  uint64_t bits = 0;
  EXPECT_TRUE(ReadJsonNumber(token, dtype, &bits)) << token;
  return bits;
}

bool IsNan16(uint64_t bits, int man_bits) {
  const uint64_t exp_mask = 0x7fff & ~((uint64_t{1} << man_bits) - 1);
  return (bits & exp_mask) == exp_mask && (bits & ((1u << man_bits) - 1)) != 0;
}

TEST(OipJsonTest, EverySixteenBitValueRoundTripsInItsShortestDigits) {
  for (kernel::DType dtype :
       {kernel::DType::kFloat16, kernel::DType::kBFloat16}) {
    const int man_bits = dtype == kernel::DType::kFloat16 ? 10 : 7;
    const int exp_bits = dtype == kernel::DType::kFloat16 ? 5 : 8;
    for (uint64_t bits = 0; bits < 0x10000; ++bits) {
      const std::string text = JsonNumber(dtype, bits);
      const uint64_t back = Read(dtype, text);
      if (IsNan16(bits, man_bits)) {
        EXPECT_EQ(text, "NaN");
        EXPECT_TRUE(IsNan16(back, man_bits));
        continue;
      }
      ASSERT_EQ(back, bits) << text;
      if ((bits & 0x7fff) != 0 &&
          (bits & 0x7fff) < (0x7fffu >> man_bits << man_bits)) {
        // As many significant digits as the shortest generator gives.
        const ShortestDecimal s =
            ShortestDigitsOfBits(bits & 0x7fff, exp_bits, man_bits);
        std::string digits;
        for (char c : text) {
          if (c == 'e') break;
          if (c >= '0' && c <= '9') digits.push_back(c);
        }
        digits.erase(0, digits.find_first_not_of('0'));
        while (!digits.empty() && digits.back() == '0') digits.pop_back();
        EXPECT_EQ(digits, s.digits) << text;
      }
    }
  }
}

TEST(OipJsonTest, FloatAndDoubleRoundTrip) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t r = rng();
    const uint32_t f = static_cast<uint32_t>(r);
    float fv;
    std::memcpy(&fv, &f, 4);
    const std::string ft = JsonNumber(kernel::DType::kFloat32, f);
    if (std::isnan(fv)) {
      EXPECT_EQ(ft, "NaN");
    } else {
      ASSERT_EQ(Read(kernel::DType::kFloat32, ft) & 0xffffffffu, f) << ft;
    }
    double dv;
    std::memcpy(&dv, &r, 8);
    const std::string dt = JsonNumber(kernel::DType::kFloat64, r);
    if (!std::isnan(dv)) {
      ASSERT_EQ(Read(kernel::DType::kFloat64, dt), r) << dt;
    }
  }
}

TEST(OipJsonTest, Spellings) {
  EXPECT_EQ(JsonNumber(kernel::DType::kFloat32, 0x80000000u), "-0.0");
  EXPECT_EQ(JsonNumber(kernel::DType::kFloat32, 0x7f800000u), "Infinity");
  EXPECT_EQ(JsonNumber(kernel::DType::kFloat32, 0xff800000u), "-Infinity");
  EXPECT_EQ(JsonNumber(kernel::DType::kFloat16, 0x2e66), "0.1");
  EXPECT_EQ(JsonNumber(kernel::DType::kFloat64, 0x3ee4f8b588e368f1ull),
            "1e-05");
  EXPECT_EQ(JsonNumber(kernel::DType::kFloat64, 0x4341c37937e08000ull),
            "1e+16");
  // Decimal to FP16 from the nearest double: 0.1 is 0x2e66.
  EXPECT_EQ(Read(kernel::DType::kFloat16, "0.1"), 0x2e66u);
  EXPECT_EQ(Read(kernel::DType::kFloat16, "65520"), 0x7c00u);  // overflows
  EXPECT_EQ(Read(kernel::DType::kFloat16, "-0"), 0x8000u);
  EXPECT_EQ(Read(kernel::DType::kBFloat16, "1.00390626"), 0x3f81u);
  EXPECT_EQ(Read(kernel::DType::kFloat32, "1e-46"), 0u);
  uint64_t bits = 0;
  EXPECT_FALSE(ReadJsonNumber("nan", kernel::DType::kFloat32, &bits));
  EXPECT_FALSE(ReadJsonNumber("01", kernel::DType::kFloat32, &bits));
  EXPECT_FALSE(ReadJsonNumber("1.", kernel::DType::kFloat32, &bits));
  EXPECT_FALSE(ReadJsonNumber("+1", kernel::DType::kFloat32, &bits));
}

TEST(OipJsonTest, DecoderFieldChecks) {
  auto decode = [](const std::string& json) {
    HttpInferRequest out;
    return DecodeHttpInferRequest(json, "", &out);
  };
  EXPECT_THAT(std::string(decode(R"({"inputs":[{"name":"input","shape":[1],)"
                                 R"("datatype":"FP32","data":[1]}],"id":7})")
                              .message()),
              HasSubstr("id is a number; send a string"));
  EXPECT_THAT(std::string(decode(R"({"inputs":[{"name":"input","shape":[1.5],)"
                                 R"("datatype":"FP32","data":[1]}]})")
                              .message()),
              HasSubstr("inputs[0].shape[0] is 1.5; send an integer"));
  EXPECT_THAT(std::string(decode(R"({"inputs":[{"name":"input","shape":[1],)"
                                 R"("datatype":"FP32","data":[1]}]} x)")
                              .message()),
              HasSubstr("unexpected text after the value at byte"));
  EXPECT_THAT(
      std::string(decode(R"({"inputs":[{"name":"in\ud800"}]})").message()),
      HasSubstr("unpaired surrogate"));
  EXPECT_THAT(std::string(decode(std::string(100000, '[')).message()),
              HasSubstr("nested too deep"));
  EXPECT_THAT(
      std::string(decode(R"({"inputs":[{"name":"input","shape":[],)"
                         R"("datatype":"FP32","data":[[1]]}]})")
                      .message()),
      HasSubstr("nested deeper than inputs[0].shape [] (0 dimensions)"));
  HttpInferRequest ok;
  ASSERT_TRUE(DecodeHttpInferRequest(
                  R"({"inputs":[{"name":"input","shape":[2],"datatype":"FP64",)"
                  R"("data":[1,-0.0]}],"outputs":[{"name":"output",)"
                  R"("parameters":{"binary_data":true}}],)"
                  R"("parameters":{"timeout":5,"max_value":6}})",
                  "", &ok)
                  .ok());
  EXPECT_TRUE(ok.binary_output);
  EXPECT_EQ(ok.timeout_micros, 5);
  EXPECT_EQ(ok.request.parameters().size(), 1u);
  EXPECT_EQ(ok.request.parameters().at("max_value").int64_param(), 6);
  EXPECT_TRUE(ok.request.outputs(0).parameters().empty());
  ASSERT_EQ(ok.request.raw_input_contents(0).size(), 16u);
  double second;
  std::memcpy(&second, ok.request.raw_input_contents(0).data() + 8, 8);
  EXPECT_TRUE(std::signbit(second));
}

}  // namespace
}  // namespace relu::service

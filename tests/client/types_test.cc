// Float16 / BFloat16 conversions and Tensor helpers.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>

#include "gtest/gtest.h"
#include "relu/client.h"
#include "tests/client/python_numpy.h"

namespace relu {
namespace {

uint32_t FloatBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}
float BitsFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

TEST(Float16Test, KnownValues) {
  EXPECT_EQ(Float16(1.0f).bits, 0x3c00);
  EXPECT_EQ(Float16(-2.0f).bits, 0xc000);
  EXPECT_EQ(Float16(0.0f).bits, 0x0000);
  EXPECT_EQ(Float16(-0.0f).bits, 0x8000);
  EXPECT_EQ(Float16(65504.0f).bits, 0x7bff);
  // 65520 is halfway between 65504 and 65536 (= overflow): ties to even.
  EXPECT_EQ(Float16(65520.0f).bits, 0x7c00);
  EXPECT_EQ(Float16(65519.996f).bits, 0x7bff);
  EXPECT_EQ(Float16(std::ldexp(1.0f, -24)).bits, 0x0001);  // min subnormal
  EXPECT_EQ(Float16(std::ldexp(1.0f, -25)).bits, 0x0000);  // tie to even 0
  EXPECT_EQ(Float16(std::ldexp(3.0f, -25)).bits, 0x0002);  // tie to even 2
  EXPECT_EQ(Float16(std::ldexp(1.0f, -14)).bits, 0x0400);  // min normal
  EXPECT_EQ(Float16(0.1f).bits, 0x2e66);
  EXPECT_EQ(Float16(std::numeric_limits<float>::infinity()).bits, 0x7c00);
  EXPECT_EQ(Float16(-std::numeric_limits<float>::infinity()).bits, 0xfc00);
  const Float16 nan(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan.bits & 0x7c00, 0x7c00);
  EXPECT_NE(nan.bits & 0x03ff, 0);
  // Signalling NaN with only low payload bits stays a NaN.
  EXPECT_TRUE(std::isnan(Float16(BitsFloat(0x7f800001)).ToFloat()));
}

TEST(Float16Test, EveryValueRoundTripsThroughFloat) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const Float16 h = Float16::FromBits(static_cast<uint16_t>(b));
    const float f = h.ToFloat();
    if ((b & 0x7c00) == 0x7c00 && (b & 0x3ff) != 0) {
      EXPECT_TRUE(std::isnan(f)) << b;
      EXPECT_TRUE(std::isnan(Float16(f).ToFloat())) << b;
      continue;
    }
    EXPECT_EQ(Float16(f).bits, b) << b;
    EXPECT_EQ(Float16(static_cast<double>(f)).bits, b) << b;
  }
}

// Rounding of floats between two adjacent float16 values: the nearest wins,
// ties go to the even one. Checked against an independent computation.
TEST(Float16Test, RoundsToNearestEven) {
  std::mt19937 rng(1);
  for (uint32_t b = 0; b < 0x7bff; ++b) {
    const float lo = Float16::FromBits(static_cast<uint16_t>(b)).ToFloat();
    const float hi = Float16::FromBits(static_cast<uint16_t>(b + 1)).ToFloat();
    const double mid = (static_cast<double>(lo) + hi) / 2;
    const uint16_t even = (b & 1) ? b + 1 : b;
    EXPECT_EQ(Float16(mid).bits, even) << b;
    EXPECT_EQ(Float16(std::nextafter(mid, 0.0)).bits, b) << b;
    EXPECT_EQ(Float16(std::nextafter(mid, 1e9)).bits, b + 1) << b;
    const double inside =
        lo + (hi - lo) * std::uniform_real_distribution<double>(0, 1)(rng);
    const uint16_t nearest = inside - lo < hi - inside
                                 ? b
                                 : (inside - lo > hi - inside ? b + 1 : even);
    EXPECT_EQ(Float16(inside).bits, nearest) << b;
    EXPECT_EQ(Float16(-inside).bits, nearest | 0x8000) << b;
  }
}

TEST(Float16Test, MatchesNumpyOnRandomFloats) {
  if (!testing::HaveNumpy()) GTEST_SKIP() << "no python3 numpy";
  std::optional<std::string> out = testing::RunPython(R"(
import numpy as np
rng = np.random.default_rng(7)
bits = rng.integers(0, 2**32, size=20000, dtype=np.uint64).astype(np.uint32)
f = bits.view(np.float32)
with np.errstate(all='ignore'):
    h = f.astype(np.float16).view(np.uint16)
for a, b in zip(bits, h):
    print(int(a), int(b))
)");
  ASSERT_TRUE(out.has_value());
  std::istringstream lines(*out);
  uint32_t in, expected;
  int n = 0;
  while (lines >> in >> expected) {
    const float f = BitsFloat(in);
    const uint16_t got = Float16(f).bits;
    if (std::isnan(f)) {
      EXPECT_EQ(got & 0x7c00, 0x7c00);
      EXPECT_NE(got & 0x3ff, 0);
    } else {
      EXPECT_EQ(got, expected) << "float bits " << in;
    }
    ++n;
  }
  EXPECT_EQ(n, 20000);
}

TEST(BFloat16Test, KnownValues) {
  EXPECT_EQ(BFloat16(1.0f).bits, 0x3f80);
  EXPECT_EQ(BFloat16(-0.0f).bits, 0x8000);
  EXPECT_EQ(BFloat16(BitsFloat(0x3f808000)).bits, 0x3f80);  // tie -> even
  EXPECT_EQ(BFloat16(BitsFloat(0x3f818000)).bits, 0x3f82);  // tie -> even
  EXPECT_EQ(BFloat16(BitsFloat(0x3f808001)).bits, 0x3f81);
  // Subnormals are kept, not flushed.
  EXPECT_EQ(BFloat16(BitsFloat(0x00010000)).bits, 0x0001);
  EXPECT_EQ(BFloat16(BitsFloat(0x00008000)).bits, 0x0000);  // tie -> even
  EXPECT_EQ(BFloat16(BitsFloat(0x00018000)).bits, 0x0002);
  EXPECT_EQ(BFloat16(BitsFloat(0x7f7fffff)).bits, 0x7f80);  // rounds to inf
  EXPECT_EQ(BFloat16(BitsFloat(0x7f7f7fff)).bits, 0x7f7f);
  EXPECT_TRUE(std::isnan(BFloat16(BitsFloat(0x7f800001)).ToFloat()));
  EXPECT_TRUE(std::isnan(BFloat16(BitsFloat(0xffc00000)).ToFloat()));
  // From double directly, without rounding through float first: 1 + 2^-8 +
  // 2^-40 is a bfloat16 tie only after rounding to float.
  EXPECT_EQ(BFloat16(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40)).bits,
            0x3f81);
  EXPECT_EQ(BFloat16(static_cast<float>(1.0 + std::ldexp(1.0, -8) +
                                        std::ldexp(1.0, -40)))
                .bits,
            0x3f80);
}

TEST(BFloat16Test, MatchesIntegerRoundingOfEveryFloatPattern) {
  // Reference: the classic integer trick, valid for non-NaN inputs.
  std::mt19937 rng(3);
  for (int i = 0; i < 2000000; ++i) {
    const uint32_t b = rng();
    const float f = BitsFloat(b);
    if (std::isnan(f)) continue;
    const uint32_t expected = (b + 0x7fff + ((b >> 16) & 1)) >> 16;
    ASSERT_EQ(BFloat16(f).bits, expected) << b;
    ASSERT_EQ(
        FloatBits(
            BFloat16::FromBits(static_cast<uint16_t>(expected)).ToFloat()),
        expected << 16);
  }
}

TEST(TensorTest, TypedRoundTrip) {
  Tensor t = Tensor::FromFloat32({1.5f, -2.0f, 0.0f, 3.0f, 4.0f, 5.0f}, {2, 3});
  EXPECT_EQ(t.dtype, DataType::kFloat32);
  EXPECT_EQ(t.ElementCount(), 6);
  EXPECT_EQ(t.data.size(), 24u);
  absl::StatusOr<std::vector<float>> back = t.ToFloat32();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ((*back)[0], 1.5f);
  EXPECT_EQ(back->size(), 6u);
  EXPECT_EQ(t.ToFloat64().status().code(), absl::StatusCode::kInvalidArgument);
  t.data.pop_back();
  EXPECT_EQ(t.ToFloat32().status().code(), absl::StatusCode::kInvalidArgument);

  Tensor s = Tensor::FromFloat64({2.0}, {});
  EXPECT_TRUE(s.shape.size() == 1);  // empty shape argument means 1-D
  Tensor h = Tensor::FromFloat16({Float16(1.0f)});
  EXPECT_EQ(h.data, std::string("\x00\x3c", 2));
  Tensor bf = Tensor::FromBFloat16({BFloat16(1.0f)});
  EXPECT_EQ(bf.data, std::string("\x80\x3f", 2));
}

TEST(DataTypeTest, Names) {
  for (DataType d : {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                     DataType::kBFloat16}) {
    EXPECT_EQ(ParseDataType(DataTypeName(d)), d);
  }
  EXPECT_EQ(ParseDataType("int8"), std::nullopt);
  EXPECT_EQ(ElementSize(DataType::kFloat64), 8u);
  EXPECT_EQ(ElementSize(DataType::kBFloat16), 2u);
}

}  // namespace
}  // namespace relu

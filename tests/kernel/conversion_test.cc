// The scalar path's float16 conversions against the CPU's F16C instructions:
// every half, and float32 bit patterns spread over the whole range plus every
// pattern near the rounding boundaries of subnormal and normal halves.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "server/kernel/plan.h"
#include "server/kernel/relu_kernel.h"

namespace relu::kernel {
namespace {

__attribute__((target("f16c"))) uint16_t HardwareToHalf(float f) {
  return static_cast<uint16_t>(
      _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

__attribute__((target("f16c"))) float HardwareToFloat(uint16_t h) {
  return _cvtsh_ss(h);
}

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof(f));
  return f;
}

bool IsNaNHalf(uint16_t h) { return (h & 0x7fff) > 0x7c00; }

class ConversionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsaSupported(Isa::kAvx2)) GTEST_SKIP() << "no F16C to compare with";
  }
};

TEST_F(ConversionTest, EveryHalfToFloat) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float got = internal::HalfToFloat(static_cast<uint16_t>(h));
    const float want = HardwareToFloat(static_cast<uint16_t>(h));
    if (IsNaNHalf(static_cast<uint16_t>(h))) {
      ASSERT_NE(got, got) << std::hex << h;
    } else {
      ASSERT_EQ(Bits(got), Bits(want)) << std::hex << h;
    }
  }
}

TEST_F(ConversionTest, FloatToHalfMatchesHardware) {
  auto check = [](uint32_t bits) {
    const float f = FromBits(bits);
    const uint16_t got = internal::FloatToHalf(f);
    const uint16_t want = HardwareToHalf(f);
    if (IsNaNHalf(want)) {
      ASSERT_TRUE(IsNaNHalf(got)) << std::hex << bits;
    } else {
      ASSERT_EQ(got, want) << std::hex << bits;
    }
  };
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 0x3f1) {
    check(static_cast<uint32_t>(bits));
  }
  // Every float32 within 2^14 ulps of each half's value and of each
  // midpoint between neighbouring halves: all rounding decisions.
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const uint32_t center =
        Bits(internal::HalfToFloat(static_cast<uint16_t>(h)));
    for (uint32_t d = 0; d < (1u << 13); d += 7) {
      for (uint32_t sign : {0u, 0x80000000u}) {
        check((center + d) | sign);
        if (center >= d) check((center - d) | sign);
      }
    }
  }
}

}  // namespace
}  // namespace relu::kernel

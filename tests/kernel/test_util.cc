#include "tests/kernel/test_util.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "server/kernel/plan.h"

namespace relu::kernel::testing {

uint64_t GetBits(DType dtype, const void* data, size_t index) {
  const size_t size = ElementSize(dtype);
  uint64_t bits = 0;
  std::memcpy(&bits, static_cast<const char*>(data) + index * size, size);
  return bits;
}

void SetBits(DType dtype, void* data, size_t index, uint64_t bits) {
  const size_t size = ElementSize(dtype);
  std::memcpy(static_cast<char*>(data) + index * size, &bits, size);
}

uint64_t BitsOf(DType dtype, double value) {
  const double rounded = internal::ConstantToDType(dtype, value);
  const float f = static_cast<float>(rounded);
  uint64_t bits = 0;
  switch (dtype) {
    case DType::kFloat64:
      std::memcpy(&bits, &rounded, 8);
      return bits;
    case DType::kFloat32:
      std::memcpy(&bits, &f, 4);
      return bits;
    case DType::kFloat16:
      return internal::FloatToHalf(f);
    case DType::kBFloat16:
      return internal::FloatToBFloat16(f);
  }
  return 0;
}

long FirstMismatch(DType dtype, const void* want, const void* got, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!relu::testing::SameResult(dtype, GetBits(dtype, got, i),
                                   GetBits(dtype, want, i))) {
      return static_cast<long>(i);
    }
  }
  return -1;
}

std::string DescribeBits(DType dtype, uint64_t bits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s:0x%0*llx", DTypeName(dtype),
                static_cast<int>(ElementSize(dtype) * 2),
                static_cast<unsigned long long>(bits));
  return buf;
}

std::vector<NamedParams> BranchParams() {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<NamedParams> sets;
  auto add = [&](std::string name, std::optional<double> m, double s,
                 double t) {
    Params p;
    p.max_value = m;
    p.negative_slope = s;
    p.threshold = t;
    sets.push_back({std::move(name), p});
  };
  add("plain", std::nullopt, 0, 0);
  add("relu6", 6.0, 0, 0);
  add("clip2_5", 2.5, 0, 0);
  add("clip0", 0.0, 0, 0);
  add("clip_inf", inf, 0, 0);
  add("leaky0_3", std::nullopt, 0.3, 0);
  add("leaky2", std::nullopt, 2.0, 0);
  add("leaky_tiny", std::nullopt, 1e-5, 0);
  add("threshold0_7", std::nullopt, 0, 0.7);
  add("threshold_tiny", std::nullopt, 0, 1e-41);
  add("threshold_max4", 4.0, 0, 1.5);
  add("threshold_max6", 6.0, 0, 2.5);
  add("slope_clip4", 4.0, 0.5, 0);
  add("slope_relu6", 6.0, 0.5, 0);
  add("slope_clip_inf", inf, 0.25, 0);
  add("slope_threshold", std::nullopt, 0.5, 1.0);
  add("slope_threshold_max", 1.5, 0.3, 0.7);
  add("slope_threshold_max6", 6.0, 2.0, 3.1);
  return sets;
}

std::vector<uint64_t> EdgeBits(DType dtype, const Params& params) {
  std::vector<uint64_t> bits;
  const double inf = std::numeric_limits<double>::infinity();
  for (double v :
       {0.0,  -0.0,    inf,      -inf,  1.0,   -1.0,   6.0,     -6.0,  0.5,
        -0.5, 65504.0, -65504.0, 1e-3,  -1e-3, 3.0e38, -3.0e38, 1e300, -1e300,
        7.0,  5.999,   1e-6,     -1e-6, 2.0,   0.1,    -0.1}) {
    bits.push_back(BitsOf(dtype, v));
  }
  // Values at and next to the constants.
  std::vector<double> anchors = {params.threshold, -params.threshold, 6.0, 0.0};
  if (params.max_value) anchors.push_back(*params.max_value);
  for (double a : anchors) {
    const uint64_t b = BitsOf(dtype, a);
    for (uint64_t c :
         {b, b + 1, b - 1, b ^ (uint64_t{1} << (ElementSize(dtype) * 8 - 1))}) {
      bits.push_back(c &
                     (ElementSize(dtype) == 8
                          ? ~uint64_t{0}
                          : ((uint64_t{1} << (ElementSize(dtype) * 8)) - 1)));
    }
  }
  switch (dtype) {
    case DType::kFloat32:
      for (uint64_t b : {0x00000001u, 0x007fffffu, 0x00800000u, 0x7f7fffffu,
                         0x7fc00000u, 0x7f800001u, 0xffc00000u, 0x80000001u,
                         0x807fffffu, 0xff7fffffu, 0x7fffffffu}) {
        bits.push_back(b);
      }
      break;
    case DType::kFloat64:
      for (uint64_t b :
           {uint64_t{1}, uint64_t{0x000fffffffffffff},
            uint64_t{0x0010000000000000}, uint64_t{0x7fefffffffffffff},
            uint64_t{0x7ff8000000000000}, uint64_t{0x7ff0000000000001},
            uint64_t{0xfff8000000000000}, uint64_t{0x8000000000000001},
            uint64_t{0xffefffffffffffff}}) {
        bits.push_back(b);
      }
      break;
    case DType::kFloat16:
      for (uint64_t b : {0x0001, 0x03ff, 0x0400, 0x7bff, 0x7e00, 0x7c01, 0xfe00,
                         0x8001, 0x83ff, 0xfbff, 0x7fff}) {
        bits.push_back(b);
      }
      break;
    case DType::kBFloat16:
      for (uint64_t b : {0x0001, 0x007f, 0x0080, 0x7f7f, 0x7fc0, 0x7f81, 0xffc0,
                         0x8001, 0x807f, 0xff7f, 0x7fff}) {
        bits.push_back(b);
      }
      break;
  }
  return bits;
}

std::vector<uint8_t> MakeInput(DType dtype, const Params& params, size_t n,
                               uint64_t seed, bool edges_only) {
  std::vector<uint8_t> data(n * ElementSize(dtype));
  const std::vector<uint64_t> edges = EdgeBits(dtype, params);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 4.0);
  const uint64_t mask = ElementSize(dtype) == 8
                            ? ~uint64_t{0}
                            : (uint64_t{1} << (ElementSize(dtype) * 8)) - 1;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t r = rng();
    uint64_t bits;
    if (edges_only || r % 4 == 0) {
      bits = edges[(r >> 8) % edges.size()];
    } else if (r % 4 == 1) {
      bits = rng() & mask;
    } else {
      bits = BitsOf(dtype, normal(rng));
    }
    SetBits(dtype, data.data(), i, bits);
  }
  return data;
}

}  // namespace relu::kernel::testing

// Parameter validation, Python float formatting and plans.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/float_digits.h"
#include "server/kernel/plan.h"
#include "server/kernel/relu_kernel.h"

namespace relu::kernel {

std::string PythonFloatRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  // Shortest digit string that reads back to the same double.
  const ShortestDecimal shortest = ShortestDigits(value);
  const std::string sign = std::signbit(value) ? "-" : "";
  const std::string& digits = shortest.digits;
  const int exponent = shortest.k - 1;
  // Python's repr: scientific when the exponent is < -4 or >= 16.
  if (exponent < -4 || exponent >= 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+',
                  std::abs(exponent));
    return out + exp_buf;
  }
  std::string out = sign;
  if (exponent < 0) {
    out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  } else {
    const size_t int_digits = static_cast<size_t>(exponent) + 1;
    if (digits.size() <= int_digits) {
      out += digits + std::string(int_digits - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, int_digits) + "." + digits.substr(int_digits);
    }
  }
  return out;
}

namespace {

// The Keras check of one parameter; empty when it passes.
std::string CheckParam(const char* name, double value) {
  if (std::isnan(value)) {
    return std::string(name) +
           " of a ReLU layer cannot be NaN. Received: " + name + "=" +
           PythonFloatRepr(value);
  }
  if (value < 0) {
    return std::string(name) +
           " of a ReLU layer cannot be a negative value. Received: " + name +
           "=" + PythonFloatRepr(value);
  }
  return "";
}

}  // namespace

std::string ValidateParams(const Params& params) {
  if (params.max_value.has_value()) {
    std::string error = CheckParam("max_value", *params.max_value);
    if (!error.empty()) return error;
  }
  std::string error = CheckParam("negative_slope", params.negative_slope);
  if (!error.empty()) return error;
  return CheckParam("threshold", params.threshold);
}

namespace internal {

// Both conversions are written without data-dependent branches (the
// selects compile to cmov): the scalar path converts every element, and
// ReLU outputs alternate unpredictably between zero and non-zero.
float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t magnitude = h & 0x7fff;
  // Exponent and mantissa moved into float32 position, then rebiased by
  // 2^112 with an exact multiply (also normalizes subnormals).
  uint32_t shifted = magnitude << 13;
  float f;
  std::memcpy(&f, &shifted, sizeof(f));
  f *= 0x1p112f;
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  // Infinity and NaN: all-ones exponent, mantissa kept.
  bits = magnitude >= 0x7c00 ? (0x7f800000 | shifted) : bits;
  bits |= sign;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

uint16_t FloatToHalf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  const uint32_t sign = (bits >> 16) & 0x8000;
  const uint32_t abs = bits & 0x7fffffff;
  // Normal halves: round to nearest even on the 13 dropped bits and rebias
  // (an overflow of the rounding lands on infinity, 0x7c00).
  const uint32_t normal =
      (abs + 0xfff + ((abs >> 13) & 1) - (uint32_t{112} << 23)) >> 13;
  // Subnormal halves (|value| < 2^-14): adding 0.5f aligns the value so the
  // FPU's round-to-nearest-even rounds at 2^-24; the low bits are the half.
  float abs_f;
  std::memcpy(&abs_f, &abs, sizeof(abs_f));
  const float aligned = abs_f + 0.5f;
  uint32_t aligned_bits;
  std::memcpy(&aligned_bits, &aligned, sizeof(aligned_bits));
  const uint32_t subnormal = aligned_bits - 0x3f000000;
  // |value| >= 65536 or inf: infinity; NaN stays a quiet NaN.
  const uint32_t big =
      abs > 0x7f800000 ? (0x7e00 | ((abs >> 13) & 0x3ff)) : 0x7c00;
  uint32_t half = abs < 0x38800000 ? subnormal : normal;
  half = abs >= 0x47800000 ? big : half;
  return static_cast<uint16_t>(sign | half);
}

float BFloat16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

uint16_t FloatToBFloat16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffff) > 0x7f800000) {
    return static_cast<uint16_t>((bits >> 16) | 0x40);
  }
  return static_cast<uint16_t>((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

double ConstantToDType(DType dtype, double value) {
  switch (dtype) {
    case DType::kFloat64:
      return value;
    case DType::kFloat32:
      return static_cast<float>(value);
    case DType::kFloat16:
      return HalfToFloat(FloatToHalf(static_cast<float>(value)));
    case DType::kBFloat16:
      return BFloat16ToFloat(FloatToBFloat16(static_cast<float>(value)));
  }
  return value;
}

}  // namespace internal
}  // namespace relu::kernel

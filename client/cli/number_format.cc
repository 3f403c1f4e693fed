#include "client/cli/number_format.h"

#include <cmath>
#include <cstring>

#include "common/float_digits.h"

namespace relu::cli {
namespace {

// Formats a finite nonzero value given its shortest digits.
std::string FormatFinite(bool negative, const ShortestDecimal& shortest,
                         long double magnitude) {
  const std::string& digits = shortest.digits;
  const int k = shortest.k;
  std::string out = negative ? "-" : "";
  const int n = static_cast<int>(digits.size());
  if (magnitude >= 1e-4L && magnitude < 1e16L) {
    if (k <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-k), '0');
      out += digits;
    } else if (n <= k) {
      out += digits;
      out.append(static_cast<size_t>(k - n), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(k));
      out += ".";
      out += digits.substr(static_cast<size_t>(k));
    }
    return out;
  }
  out += digits[0];
  if (n > 1) {
    out += ".";
    out += digits.substr(1);
  }
  const int exponent = k - 1;
  out += exponent < 0 ? "e-" : "e+";
  const int abs_exp = std::abs(exponent);
  if (abs_exp < 10) out += "0";
  out += std::to_string(abs_exp);
  return out;
}

// The value of a binary format given as its bit pattern, with `shortest`
// giving the digits of a finite nonzero one.
template <typename Shortest>
std::string FormatBits(uint64_t bits, int exp_bits, int man_bits,
                       Shortest shortest) {
  const bool negative = (bits >> (exp_bits + man_bits)) & 1;
  const int exp_field =
      static_cast<int>((bits >> man_bits) & ((1u << exp_bits) - 1));
  const uint64_t frac = bits & ((uint64_t{1} << man_bits) - 1);
  const int bias = (1 << (exp_bits - 1)) - 1;
  if (exp_field == (1 << exp_bits) - 1) {
    if (frac != 0) return "nan";
    return negative ? "-inf" : "inf";
  }
  if (exp_field == 0 && frac == 0) return negative ? "-0.0" : "0.0";
  const uint64_t f = exp_field == 0 ? frac : frac | (uint64_t{1} << man_bits);
  const int e = (exp_field == 0 ? 1 : exp_field) - bias - man_bits;
  const long double magnitude = std::ldexp(static_cast<long double>(f), e);
  return FormatFinite(negative, shortest(), magnitude);
}

template <typename T>
void AppendNested(const Tensor& t, const char* data, size_t dim, size_t* index,
                  std::string (*format)(T), std::string* out) {
  if (dim == t.shape.size()) {
    T value;
    std::memcpy(&value, data + *index * sizeof(T), sizeof(T));
    ++*index;
    *out += format(value);
    return;
  }
  *out += "[";
  for (int64_t i = 0; i < t.shape[dim]; ++i) {
    if (i > 0) *out += ", ";
    AppendNested(t, data, dim + 1, index, format, out);
  }
  *out += "]";
}

template <typename T>
std::string FormatAll(const Tensor& t, std::string (*format)(T)) {
  std::string out;
  size_t index = 0;
  AppendNested<T>(t, t.data.data(), 0, &index, format, &out);
  return out;
}

}  // namespace

std::string FormatFloat64(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return FormatBits(bits, 11, 52, [value] { return ShortestDigits(value); });
}

std::string FormatFloat32(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return FormatBits(bits, 8, 23, [value] { return ShortestDigits(value); });
}

std::string FormatFloat16(Float16 value) {
  return FormatBits(value.bits, 5, 10, [value] {
    return ShortestDigitsOfBits(value.bits, 5, 10);
  });
}

std::string FormatBFloat16(BFloat16 value) {
  return FormatBits(value.bits, 8, 7,
                    [value] { return ShortestDigitsOfBits(value.bits, 8, 7); });
}

std::string FormatTensor(const Tensor& tensor) {
  switch (tensor.dtype) {
    case DataType::kFloat32:
      return FormatAll<float>(tensor, FormatFloat32);
    case DataType::kFloat64:
      return FormatAll<double>(tensor, FormatFloat64);
    case DataType::kFloat16:
      return FormatAll<Float16>(tensor, FormatFloat16);
    case DataType::kBFloat16:
      return FormatAll<BFloat16>(tensor, FormatBFloat16);
    default:
      return "<unspecified dtype>";
  }
}

}  // namespace relu::cli

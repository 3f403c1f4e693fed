// Float16/BFloat16 conversions, data type names and Tensor helpers.
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/float_digits.h"
#include "relu/client.h"

namespace relu {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "Tensor bytes are little-endian; this host is not");

float Float16ToFloat(uint16_t h) {
  const bool negative = h & 0x8000;
  const int exp_field = (h >> 10) & 0x1f;
  const int frac = h & 0x3ff;
  float magnitude;
  if (exp_field == 0) {
    magnitude = std::ldexp(static_cast<float>(frac), -24);
  } else if (exp_field == 0x1f) {
    if (frac == 0) {
      magnitude = std::numeric_limits<float>::infinity();
    } else {
      const uint32_t bits = 0x7f800000u | (static_cast<uint32_t>(frac) << 13);
      std::memcpy(&magnitude, &bits, sizeof magnitude);
    }
  } else {
    magnitude = std::ldexp(static_cast<float>(frac | 0x400), exp_field - 25);
  }
  return negative ? -magnitude : magnitude;
}

template <typename T>
Tensor FromValues(DataType dtype, const std::vector<T>& values,
                  std::vector<int64_t> shape) {
  Tensor t;
  t.dtype = dtype;
  t.shape = shape.empty()
                ? std::vector<int64_t>{static_cast<int64_t>(values.size())}
                : std::move(shape);
  t.data.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

template <typename T>
absl::StatusOr<std::vector<T>> ToValues(const Tensor& t, DataType dtype) {
  if (t.dtype != dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor dtype is ", std::string(DataTypeName(t.dtype)),
                     ", not ", std::string(DataTypeName(dtype))));
  }
  for (int64_t d : t.shape) {
    if (d < 0) return absl::InvalidArgumentError("negative dimension");
  }
  const int64_t n = t.ElementCount();
  if (t.data.size() != static_cast<uint64_t>(n) * sizeof(T)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor data has ", t.data.size(), " bytes, expected ", n,
                     " elements of ", sizeof(T), " bytes"));
  }
  std::vector<T> values(static_cast<size_t>(n));
  if (n > 0) std::memcpy(values.data(), t.data.data(), t.data.size());
  return values;
}

}  // namespace

Float16::Float16(float value) : Float16(static_cast<double>(value)) {}
Float16::Float16(double value) : bits(RoundToSmallFloat(value, 5, 10)) {}
float Float16::ToFloat() const { return Float16ToFloat(bits); }

BFloat16::BFloat16(float value) : BFloat16(static_cast<double>(value)) {}
BFloat16::BFloat16(double value) : bits(RoundToSmallFloat(value, 8, 7)) {}
float BFloat16::ToFloat() const {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

size_t ElementSize(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32:
      return 4;
    case DataType::kFloat64:
      return 8;
    case DataType::kFloat16:
    case DataType::kBFloat16:
      return 2;
    default:
      return 0;
  }
}

std::string_view DataTypeName(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32:
      return "float32";
    case DataType::kFloat64:
      return "float64";
    case DataType::kFloat16:
      return "float16";
    case DataType::kBFloat16:
      return "bfloat16";
    default:
      return "unspecified";
  }
}

std::optional<DataType> ParseDataType(std::string_view name) {
  if (name == "float32" || name == "float") return DataType::kFloat32;
  if (name == "float64" || name == "double") return DataType::kFloat64;
  if (name == "float16" || name == "half") return DataType::kFloat16;
  if (name == "bfloat16") return DataType::kBFloat16;
  return std::nullopt;
}

std::string_view ServingStatusName(ServingStatus status) {
  switch (status) {
    case ServingStatus::kServing:
      return "SERVING";
    case ServingStatus::kNotServing:
      return "NOT_SERVING";
    case ServingStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
    default:
      return "UNKNOWN";
  }
}

int64_t Tensor::ElementCount() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor Tensor::FromFloat32(const std::vector<float>& values,
                           std::vector<int64_t> shape) {
  return FromValues(DataType::kFloat32, values, std::move(shape));
}
Tensor Tensor::FromFloat64(const std::vector<double>& values,
                           std::vector<int64_t> shape) {
  return FromValues(DataType::kFloat64, values, std::move(shape));
}
Tensor Tensor::FromFloat16(const std::vector<Float16>& values,
                           std::vector<int64_t> shape) {
  return FromValues(DataType::kFloat16, values, std::move(shape));
}
Tensor Tensor::FromBFloat16(const std::vector<BFloat16>& values,
                            std::vector<int64_t> shape) {
  return FromValues(DataType::kBFloat16, values, std::move(shape));
}

absl::StatusOr<std::vector<float>> Tensor::ToFloat32() const {
  return ToValues<float>(*this, DataType::kFloat32);
}
absl::StatusOr<std::vector<double>> Tensor::ToFloat64() const {
  return ToValues<double>(*this, DataType::kFloat64);
}
absl::StatusOr<std::vector<Float16>> Tensor::ToFloat16() const {
  return ToValues<Float16>(*this, DataType::kFloat16);
}
absl::StatusOr<std::vector<BFloat16>> Tensor::ToBFloat16() const {
  return ToValues<BFloat16>(*this, DataType::kBFloat16);
}

}  // namespace relu

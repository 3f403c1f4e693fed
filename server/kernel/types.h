// The server's shared vocabulary: element types, the layer's parameters, and
// a segment of work. Metrics, the batcher and the services use these without
// the Kernel API (relu_kernel.h); header-only, no dependencies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace relu::kernel {

// Element types. The values match relu.v1.DataType.
enum class DType : uint8_t {
  kFloat32 = 1,
  kFloat64 = 2,
  kFloat16 = 3,
  kBFloat16 = 4,
};

// Bytes per element of `dtype`.
constexpr size_t ElementSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat64:
      return 8;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
  }
  return 0;
}

// "float32", "float64", "float16", "bfloat16".
constexpr const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
  }
  return "unknown";
}

// The layer's constructor arguments.
struct Params {
  std::optional<double> max_value;  // absent = unlimited
  double negative_slope = 0.0;
  double threshold = 0.0;
};

// One request's share of a batched job.
struct Segment {
  DType dtype = DType::kFloat32;
  Params params;
  const void* in = nullptr;
  void* out = nullptr;  // may equal `in`
  size_t n = 0;         // elements
};

}  // namespace relu::kernel

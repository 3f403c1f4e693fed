#include "tests/reliability/reference.h"

#include <cmath>
#include <cstring>

namespace relu::reliability {
namespace {

bool IsNan(kernel::DType dtype, const char* p) {
  switch (dtype) {
    case kernel::DType::kFloat32: {
      float f;
      std::memcpy(&f, p, sizeof f);
      return std::isnan(f);
    }
    case kernel::DType::kFloat64: {
      double d;
      std::memcpy(&d, p, sizeof d);
      return std::isnan(d);
    }
    case kernel::DType::kFloat16: {
      uint16_t h;
      std::memcpy(&h, p, sizeof h);
      return (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0;
    }
    case kernel::DType::kBFloat16: {
      uint16_t b;
      std::memcpy(&b, p, sizeof b);
      return (b & 0x7f80) == 0x7f80 && (b & 0x007f) != 0;
    }
  }
  return false;
}

}  // namespace

std::string ReferenceOutput(const v1::ApplyReLURequest& request) {
  const auto dtype = static_cast<kernel::DType>(request.tensor().dtype());
  kernel::Params params;
  if (request.params().has_max_value()) {
    params.max_value = request.params().max_value();
  }
  params.negative_slope = request.params().negative_slope();
  params.threshold = request.params().threshold();
  const std::string& in = request.tensor().data();
  std::string out(in.size(), '\0');
  kernel::ApplyOnThread(kernel::Isa::kScalar, dtype, params, in.data(),
                        out.data(), in.size() / kernel::ElementSize(dtype));
  return out;
}

int64_t FirstDifference(kernel::DType dtype, const std::string& want,
                        const std::string& got) {
  if (want.size() != got.size()) return 0;
  const size_t size = kernel::ElementSize(dtype);
  for (size_t i = 0; i < want.size(); i += size) {
    const char* w = want.data() + i;
    const char* g = got.data() + i;
    if (std::memcmp(w, g, size) == 0) continue;
    if (IsNan(dtype, w) && IsNan(dtype, g)) continue;
    return static_cast<int64_t>(i / size);
  }
  return -1;
}

bool SameElements(kernel::DType dtype, const std::string& want,
                  const std::string& got) {
  return FirstDifference(dtype, want, got) < 0;
}

v1::ApplyReLURequest RandomRequest(std::mt19937_64& rng, v1::DataType dtype,
                                   size_t elements,
                                   const kernel::Params& params, bool scalar) {
  v1::ApplyReLURequest request;
  v1::Tensor* tensor = request.mutable_tensor();
  tensor->set_dtype(dtype);
  if (!scalar) tensor->add_shape(static_cast<int64_t>(elements));
  if (scalar) elements = 1;
  const size_t size = kernel::ElementSize(static_cast<kernel::DType>(dtype));
  std::string data(elements * size, '\0');
  // Mostly ordinary values around the params' interesting range, with some
  // raw random bit patterns (NaN, infinities, subnormals) mixed in.
  std::uniform_real_distribution<double> value(-8.0, 8.0);
  for (size_t i = 0; i < elements; ++i) {
    char* p = data.data() + i * size;
    const bool raw = (rng() & 15) == 0;
    const uint64_t bits = rng();
    const double v = value(rng);
    switch (static_cast<kernel::DType>(dtype)) {
      case kernel::DType::kFloat32: {
        const float f = static_cast<float>(v);
        raw ? std::memcpy(p, &bits, 4) : std::memcpy(p, &f, 4);
        break;
      }
      case kernel::DType::kFloat64:
        raw ? std::memcpy(p, &bits, 8) : std::memcpy(p, &v, 8);
        break;
      case kernel::DType::kFloat16:
      case kernel::DType::kBFloat16:
        // Raw bits for both: every 16-bit pattern is a value.
        std::memcpy(p, &bits, 2);
        break;
    }
  }
  tensor->set_data(std::move(data));
  v1::ReluParams* p = request.mutable_params();
  if (params.max_value) p->set_max_value(*params.max_value);
  p->set_negative_slope(params.negative_slope);
  p->set_threshold(params.threshold);
  return request;
}

kernel::Params RandomParams(std::mt19937_64& rng) {
  static constexpr double kValues[] = {0.0, 0.1, 0.5, 1.0, 2.5, 6.0};
  auto pick = [&] { return kValues[rng() % std::size(kValues)]; };
  kernel::Params params;
  if (rng() & 1) params.max_value = pick();
  params.negative_slope = (rng() & 1) ? pick() : 0.0;
  params.threshold = (rng() & 1) ? pick() : 0.0;
  return params;
}

}  // namespace relu::reliability

#include "server/service/validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace relu::service {

kernel::Params ParamsFromProto(const v1::ReluParams& params) {
  kernel::Params out;
  if (params.has_max_value()) out.max_value = params.max_value();
  out.negative_slope = params.negative_slope();
  out.threshold = params.threshold();
  return out;
}

absl::StatusOr<kernel::DType> DTypeFromProto(int dtype) {
  switch (dtype) {
    case v1::DATA_TYPE_FLOAT32:
      return kernel::DType::kFloat32;
    case v1::DATA_TYPE_FLOAT64:
      return kernel::DType::kFloat64;
    case v1::DATA_TYPE_FLOAT16:
      return kernel::DType::kFloat16;
    case v1::DATA_TYPE_BFLOAT16:
      return kernel::DType::kBFloat16;
    case v1::DATA_TYPE_UNSPECIFIED:
      return absl::InvalidArgumentError(
          "tensor.dtype is DATA_TYPE_UNSPECIFIED (0); set DATA_TYPE_FLOAT32, "
          "DATA_TYPE_FLOAT64, DATA_TYPE_FLOAT16 or DATA_TYPE_BFLOAT16");
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor.dtype ", dtype,
          " is not a known DataType; use 1 (FLOAT32), 2 (FLOAT64), "
          "3 (FLOAT16) or 4 (BFLOAT16)"));
  }
}

absl::Status ValidateParamsStatus(const kernel::Params& params) {
  std::string error = kernel::ValidateParams(params);
  if (error.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(error);
}

std::string ShapeText(absl::Span<const int64_t> shape) {
  constexpr size_t kShown = 16;
  if (shape.size() <= kShown) {
    return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
  }
  return absl::StrCat("[", absl::StrJoin(shape.first(kShown - 2), ", "),
                      ", ..., ", shape.back(), "] (", shape.size(),
                      " dimensions)");
}

absl::Status TooManyDimensions(const std::string& field, size_t rank) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " has ", rank, " dimensions; at most ",
                   kMaxTensorRank, " are accepted (TensorFlow's limit)"));
}

absl::StatusOr<TensorSize> ValidateTensorSize(kernel::DType dtype,
                                              absl::Span<const int64_t> shape,
                                              size_t data_bytes,
                                              const TensorFieldNames& names) {
  if (shape.size() > kMaxTensorRank) {
    return TooManyDimensions(names.shape, shape.size());
  }
  const size_t element_size = kernel::ElementSize(dtype);
  // For the error messages only.
  auto shape_text = [shape] { return ShapeText(shape); };
  bool has_zero = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t dim = shape[i];
    if (dim < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(names.shape, "[", i, "] is ", dim,
                       "; dimensions must be >= 0 (shape ", shape_text(), ")"));
    }
    has_zero |= dim == 0;
  }
  // The byte count must fit a size_t; a zero dimension anywhere means an
  // empty tensor, however large the others are.
  size_t elements = has_zero ? 0 : 1;
  for (size_t i = 0; i < shape.size() && elements != 0; ++i) {
    const auto dim = static_cast<uint64_t>(shape[i]);
    if (dim > SIZE_MAX / element_size / elements) {
      return absl::InvalidArgumentError(absl::StrCat(
          names.shape, " ", shape_text(), " has too many elements: their size ",
          "in bytes overflows 64 bits"));
    }
    elements *= dim;
  }
  TensorSize out;
  out.elements = elements;
  out.bytes = elements * element_size;
  if (data_bytes != out.bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        names.data, " has ", data_bytes, " bytes; shape ", shape_text(), " of ",
        kernel::DTypeName(dtype), " needs ", out.bytes, " (", out.elements,
        " elements x ", element_size, " bytes)"));
  }
  return out;
}

absl::StatusOr<ValidatedRequest> ValidateRequest(
    const v1::ApplyReLURequest& request) {
  return ValidateRequest(request, request.tensor().data().size());
}

absl::StatusOr<ValidatedRequest> ValidateRequest(
    const v1::ApplyReLURequest& request, size_t data_bytes) {
  ValidatedRequest out;
  out.params = ParamsFromProto(request.params());
  if (absl::Status s = ValidateParamsStatus(out.params); !s.ok()) return s;
  if (!request.has_tensor()) {
    return absl::InvalidArgumentError("tensor is missing from the request");
  }
  const v1::Tensor& tensor = request.tensor();
  absl::StatusOr<kernel::DType> dtype = DTypeFromProto(tensor.dtype());
  if (!dtype.ok()) return dtype.status();
  out.dtype = *dtype;
  absl::StatusOr<TensorSize> size = ValidateTensorSize(
      out.dtype, tensor.shape(), data_bytes, TensorFieldNames());
  if (!size.ok()) return size.status();
  out.elements = size->elements;
  out.bytes = size->bytes;
  return out;
}

}  // namespace relu::service

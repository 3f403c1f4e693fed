// Checks an ApplyReLU request in the order of the spec: the parameters first
// (the Keras constructor's checks and wording), then the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "relu/v1/relu.pb.h"
#include "server/kernel/relu_kernel.h"

namespace relu::service {

struct ValidatedRequest {
  kernel::DType dtype;
  kernel::Params params;
  size_t elements = 0;  // product of the shape; 1 for a scalar
  size_t bytes = 0;     // elements * element size == data size
};

// OK with the decoded request, or INVALID_ARGUMENT with a message naming the
// field and its values, e.g. "tensor.data has 10 bytes; shape [2, 3] of
// float32 needs 24 (6 elements x 4 bytes)".
absl::StatusOr<ValidatedRequest> ValidateRequest(
    const v1::ApplyReLURequest& request);
// The same for a request whose tensor.data, `data_bytes` long, is kept apart
// (request.tensor().data() is not read).
absl::StatusOr<ValidatedRequest> ValidateRequest(
    const v1::ApplyReLURequest& request, size_t data_bytes);

// How the checks below name a tensor's fields in their messages: ApplyReLU's
// are the defaults; ModelInfer names its own ("inputs[0].shape",
// "raw_input_contents[0]", ...).
struct TensorFieldNames {
  std::string shape = "tensor.shape";
  std::string data = "tensor.data";
};

// Most dimensions a tensor may have: TensorFlow's own limit
// (TensorShape::MaxDimensions()), so every tensor Keras can hold is accepted.
inline constexpr size_t kMaxTensorRank = 254;

// "[2, 3]": a shape for a message. Past 16 dimensions it is abbreviated, so
// a message stays short whatever the shape ("[1, 1, ..., 1] (300
// dimensions)").
std::string ShapeText(absl::Span<const int64_t> shape);

// INVALID_ARGUMENT for a tensor of `rank` dimensions, more than
// kMaxTensorRank; `field` names the shape ("tensor.shape").
absl::Status TooManyDimensions(const std::string& field, size_t rank);

// A tensor's size once checked.
struct TensorSize {
  size_t elements = 0;  // product of the shape; 1 for a scalar
  size_t bytes = 0;     // elements * element size
};

// The tensor checks of ValidateRequest, shared by every protocol: at most
// kMaxTensorRank dimensions, every dimension >= 0, a byte count that fits a
// size_t, and `data_bytes` equal to it. OK with the size, or INVALID_ARGUMENT
// with ApplyReLU's messages, the fields named by `names`.
absl::StatusOr<TensorSize> ValidateTensorSize(kernel::DType dtype,
                                              absl::Span<const int64_t> shape,
                                              size_t data_bytes,
                                              const TensorFieldNames& names);

// kernel::ValidateParams as a status: OK, or INVALID_ARGUMENT with the Keras
// message.
absl::Status ValidateParamsStatus(const kernel::Params& params);

// Converts the wire parameters; unset max_value stays absent.
kernel::Params ParamsFromProto(const v1::ReluParams& params);

// The kernel dtype for a wire dtype, or INVALID_ARGUMENT naming it.
absl::StatusOr<kernel::DType> DTypeFromProto(int dtype);

}  // namespace relu::service

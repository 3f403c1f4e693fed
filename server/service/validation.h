// Checks an ApplyReLU request in the order of the spec: the parameters first
// (the Keras constructor's checks and wording), then the tensor.
#pragma once

#include <cstddef>

#include "absl/status/statusor.h"
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

// Converts the wire parameters; unset max_value stays absent.
kernel::Params ParamsFromProto(const v1::ReluParams& params);

// The kernel dtype for a wire dtype, or INVALID_ARGUMENT naming it.
absl::StatusOr<kernel::DType> DTypeFromProto(int dtype);

}  // namespace relu::service

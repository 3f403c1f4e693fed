// Helpers shared by the reliability tests and tools: random request tensors
// and the scalar kernel as the reference every answer is checked against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "relu/v1/relu.pb.h"
#include "server/kernel/relu_kernel.h"

namespace relu::reliability {

// The expected output bytes for `request`, computed with the portable scalar
// path. Requires a request that passes relu::service::ValidateRequest.
std::string ReferenceOutput(const v1::ApplyReLURequest& request);

// Whether `got` equals `want` element by element for `dtype`: bit for bit,
// except that any NaN matches any NaN. False when the sizes differ.
bool SameElements(kernel::DType dtype, const std::string& want,
                  const std::string& got);

// Index of the first element that differs (as SameElements judges), or -1.
int64_t FirstDifference(kernel::DType dtype, const std::string& want,
                        const std::string& got);

// A valid request of `elements` elements of `dtype` with random bits
// (including NaN, infinities and subnormals) and the given params; shape
// [elements] (or [] when `scalar`).
v1::ApplyReLURequest RandomRequest(std::mt19937_64& rng, v1::DataType dtype,
                                   size_t elements,
                                   const kernel::Params& params,
                                   bool scalar = false);

// Random valid Keras params: max_value unset or >= 0, slope and threshold
// >= 0, from a small set that hits the edge cases (0, 0.5, 1, 6, ...).
kernel::Params RandomParams(std::mt19937_64& rng);

}  // namespace relu::reliability

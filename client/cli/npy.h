// NumPy .npy files (format versions 1.0, 2.0 and 3.0) holding float16,
// float32 or float64 arrays of any shape in C order.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "relu/client.h"

namespace relu::cli {

// Parses the bytes of a .npy file. Big-endian arrays are converted to
// little-endian. INVALID_ARGUMENT for anything else: another dtype, Fortran
// order, a malformed header, or data shorter or longer than the shape says.
absl::StatusOr<Tensor> ParseNpy(const std::string& bytes);
// The bytes of a version 1.0 .npy file for `tensor`. INVALID_ARGUMENT for
// bfloat16, which NumPy has no dtype for.
absl::StatusOr<std::string> SerializeNpy(const Tensor& tensor);

// File wrappers; NOT_FOUND / PERMISSION_DENIED style errors for I/O.
absl::StatusOr<Tensor> ReadNpyFile(const std::string& path);
absl::Status WriteNpyFile(const std::string& path, const Tensor& tensor);

}  // namespace relu::cli

// Text form of floating-point values as NumPy prints a scalar of the value's
// own dtype (str(np.float32(x)) etc.): the shortest digits that read back to
// the same value in that dtype, positional for 1e-4 <= |x| < 1e16 and zero
// ("3.0", "-0.0", "0.0001", "65500.0"), scientific otherwise ("1e-05",
// "1.1754944e-38", "1e+20"), and "nan", "inf", "-inf". bfloat16, which NumPy
// lacks, follows the same rules with bfloat16's precision.
#pragma once

#include <cstdint>
#include <string>

#include "relu/client.h"

namespace relu::cli {

std::string FormatFloat64(double value);
std::string FormatFloat32(float value);
std::string FormatFloat16(Float16 value);
std::string FormatBFloat16(BFloat16 value);

// Python's list form of a tensor, like str(array.tolist()) in NumPy's element
// formatting: "[0.0, 3.0]", nested for more dimensions, the bare number for a
// scalar. Precondition: the tensor's byte length matches its shape.
std::string FormatTensor(const Tensor& tensor);

}  // namespace relu::cli

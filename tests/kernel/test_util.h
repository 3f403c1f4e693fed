// Helpers shared by the kernel tests: element bit patterns, edge values,
// comparison against the scalar reference and parameter sets. The golden
// cases come from tests/testing/golden.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/kernel/relu_kernel.h"
// The golden cases and the spec's NaN-aware equality, for the kernel tests.
#include "tests/testing/golden.h"

namespace relu::kernel::testing {

inline constexpr DType kAllDTypes[] = {DType::kFloat32, DType::kFloat64,
                                       DType::kFloat16, DType::kBFloat16};
inline constexpr Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};

// Bit pattern of one element of `dtype` at `index` in `data`, and back.
uint64_t GetBits(DType dtype, const void* data, size_t index);
void SetBits(DType dtype, void* data, size_t index, uint64_t bits);
// The bits of `value` rounded to `dtype` (as constants are).
uint64_t BitsOf(DType dtype, double value);

// Index of the first element where `got` differs from `want` (NaN equals any
// NaN), or -1.
long FirstMismatch(DType dtype, const void* want, const void* got, size_t n);

// A parameter set with a name for test output.
struct NamedParams {
  std::string name;
  Params params;
};
// One set per branch of the algorithm (plain, relu6, clip, leaky,
// threshold, threshold + max, slope + clip, slope + threshold, all three...).
std::vector<NamedParams> BranchParams();

// Bit patterns of edge values of `dtype` for `params`: +-0, +-inf, NaNs,
// subnormals, extremes, and values at and next to t, m, 6 and 0.
std::vector<uint64_t> EdgeBits(DType dtype, const Params& params);

// `n` elements mixing EdgeBits and random bit patterns / normal values.
std::vector<uint8_t> MakeInput(DType dtype, const Params& params, size_t n,
                               uint64_t seed, bool edges_only);

std::string DescribeBits(DType dtype, uint64_t bits);

}  // namespace relu::kernel::testing

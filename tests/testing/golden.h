// The golden cases of tests/data/relu_golden_edges.json (from the spec):
// Keras' own outputs for the tutorial's examples and for edge values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/kernel/relu_kernel.h"

namespace relu::testing {

struct GoldenCase {
  std::string name;  // e.g. "edge/thr2.5/float32"
  std::string kind;  // "seed" (a tutorial example) or "edge"
  kernel::DType dtype;
  kernel::Params params;
  std::vector<uint64_t> input_bits;   // IEEE-754 bit patterns
  std::vector<uint64_t> output_bits;  // expected
  std::vector<std::string> input;     // as Python prints them
  std::vector<std::string> output;
};

// Reads every case from the project's tests/data. Aborts if the file is
// unreadable or malformed: an unknown dtype, or a case whose input and output
// lengths differ.
std::vector<GoldenCase> LoadGoldenCases();

// Little-endian bytes of `bits`, each element ElementSize(dtype) bytes wide.
std::string BitsToBytes(kernel::DType dtype, const std::vector<uint64_t>& bits);
std::vector<uint64_t> BytesToBits(kernel::DType dtype,
                                  const std::string& bytes);

// Whether `bits` encodes a NaN of `dtype`.
bool IsNan(kernel::DType dtype, uint64_t bits);
// The spec's equality: bit for bit, except that any NaN equals any NaN.
bool SameResult(kernel::DType dtype, uint64_t actual, uint64_t expected);

}  // namespace relu::testing

// Shortest round-trip decimal digits of binary floating-point values: the
// fewest digits that read back (round to nearest even) to the same value, the
// last one nearest the value. One generator for the server's Python float
// repr (server/kernel/params.cc) and relu-cli's NumPy-style printing
// (client/cli/number_format.cc). float and double use std::to_chars; the
// 16-bit formats, which it does not know, an exact free-format generation.
// And the rounding of a double to those 16-bit formats.
// No dependencies; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace relu {

// A finite nonzero magnitude as 0.d1d2...dn x 10^k: `digits` "d1d2...dn"
// (d1 nonzero, no trailing zeros) and `k`.
struct ShortestDecimal {
  std::string digits;
  int k = 0;
};

// The value must be finite and nonzero; its sign is ignored.
ShortestDecimal ShortestDigits(double value);
ShortestDecimal ShortestDigits(float value);
// A value of a binary format given by its bit pattern: `exp_bits` exponent
// and `man_bits` stored mantissa bits (float16: 5, 10; bfloat16: 8, 7). Must
// be finite and nonzero; the sign bit is ignored.
ShortestDecimal ShortestDigitsOfBits(uint64_t bits, int exp_bits, int man_bits);

// Rounds `value` to a binary format with `exp_bits` exponent bits and
// `man_bits` stored mantissa bits (IEEE layout in the low bits of the
// result; float16: 5, 10; bfloat16: 8, 7), round to nearest, ties to even,
// subnormals kept, overflow to infinity, NaN kept quiet. Working from the
// double directly avoids double rounding. The client library's Float16 and
// BFloat16 and the HTTP door's decimal input use it.
uint16_t RoundToSmallFloat(double value, int exp_bits, int man_bits);

}  // namespace relu

#include "common/float_digits.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <vector>

namespace relu {
namespace {

// Unsigned big integer, little-endian base-2^32 limbs; just what the digit
// generation below needs.
class BigInt {
 public:
  explicit BigInt(uint64_t v = 0) {
    while (v != 0) {
      limbs_.push_back(static_cast<uint32_t>(v));
      v >>= 32;
    }
  }
  void ShiftLeft(int bits) {
    if (limbs_.empty() || bits == 0) return;
    const int words = bits / 32, rest = bits % 32;
    if (rest != 0) {
      uint32_t carry = 0;
      for (uint32_t& limb : limbs_) {
        const uint32_t next = limb >> (32 - rest);
        limb = (limb << rest) | carry;
        carry = next;
      }
      if (carry != 0) limbs_.push_back(carry);
    }
    limbs_.insert(limbs_.begin(), words, 0);
  }
  void MulSmall(uint32_t m) {
    uint64_t carry = 0;
    for (uint32_t& limb : limbs_) {
      const uint64_t p = uint64_t{limb} * m + carry;
      limb = static_cast<uint32_t>(p);
      carry = p >> 32;
    }
    if (carry != 0) limbs_.push_back(static_cast<uint32_t>(carry));
  }
  void MulPow10(int n) {
    for (; n >= 9; n -= 9) MulSmall(1000000000u);
    for (; n > 0; --n) MulSmall(10);
  }
  void Add(const BigInt& o) {
    limbs_.resize(std::max(limbs_.size(), o.limbs_.size()), 0);
    uint64_t carry = 0;
    for (size_t i = 0; i < limbs_.size(); ++i) {
      const uint64_t s =
          uint64_t{limbs_[i]} + (i < o.limbs_.size() ? o.limbs_[i] : 0) + carry;
      limbs_[i] = static_cast<uint32_t>(s);
      carry = s >> 32;
    }
    if (carry != 0) limbs_.push_back(static_cast<uint32_t>(carry));
  }
  // Precondition: *this >= o.
  void Sub(const BigInt& o) {
    int64_t borrow = 0;
    for (size_t i = 0; i < limbs_.size(); ++i) {
      int64_t d = int64_t{limbs_[i]} -
                  (i < o.limbs_.size() ? int64_t{o.limbs_[i]} : 0) - borrow;
      borrow = d < 0;
      if (d < 0) d += int64_t{1} << 32;
      limbs_[i] = static_cast<uint32_t>(d);
    }
    Trim();
  }
  friend int Compare(const BigInt& a, const BigInt& b) {
    if (a.limbs_.size() != b.limbs_.size()) {
      return a.limbs_.size() < b.limbs_.size() ? -1 : 1;
    }
    for (size_t i = a.limbs_.size(); i-- > 0;) {
      if (a.limbs_[i] != b.limbs_[i]) return a.limbs_[i] < b.limbs_[i] ? -1 : 1;
    }
    return 0;
  }

 private:
  void Trim() {
    while (!limbs_.empty() && limbs_.back() == 0) limbs_.pop_back();
  }
  std::vector<uint32_t> limbs_;
};

BigInt Sum(BigInt a, const BigInt& b) {
  a.Add(b);
  return a;
}

// A positive finite value f * 2^e of a binary format with `man_bits` stored
// mantissa bits; `lower_gap_halved` when f is a power of two above the
// smallest normal (the next value below is closer).
struct Decomposed {
  uint64_t f;
  int e;
  bool lower_gap_halved;
};

// Shortest decimal digits d1 d2 ... dn and exponent k with value
// ~= 0.d1d2...dn * 10^k that read back to the value (lie inside its rounding
// interval), the last digit chosen nearest to the value (Steele & White /
// Burger & Dybvig free-format generation, with exact integers).
void FreeFormatDigits(const Decomposed& v, std::string* digits, int* k_out) {
  // value = r / s, upper boundary (r + m_plus) / s, lower (r - m_minus) / s.
  BigInt r(v.f), s(1), m_plus(1), m_minus(1);
  const int extra = v.lower_gap_halved ? 2 : 1;
  r.ShiftLeft(extra);
  if (v.e >= 0) {
    r.ShiftLeft(v.e);
    m_plus.ShiftLeft(v.e + extra - 1);
    m_minus.ShiftLeft(v.e);
    s.ShiftLeft(extra);
  } else {
    m_plus.ShiftLeft(extra - 1);
    s.ShiftLeft(extra - v.e);
  }
  // IEEE round-half-even reads a boundary back to this value when its
  // mantissa is even: then the boundaries are inside the interval.
  const bool inclusive = (v.f & 1) == 0;
  // k: the smallest integer with the upper boundary below 10^k (at or below
  // when it is outside), so the first digit is below 10. Start from an
  // estimate and correct it.
  const double approx =
      std::log10(static_cast<double>(v.f)) + v.e * 0.30102999566398120;
  int k = static_cast<int>(std::ceil(approx));
  auto scaled_fits = [&](int kk) {  // r + m_plus < (<=) s * 10^kk
    BigInt lhs = Sum(r, m_plus), rhs = s;
    if (kk >= 0) {
      rhs.MulPow10(kk);
    } else {
      lhs.MulPow10(-kk);
    }
    const int c = Compare(lhs, rhs);
    return inclusive ? c < 0 : c <= 0;
  };
  while (!scaled_fits(k)) ++k;
  while (scaled_fits(k - 1)) --k;
  if (k >= 0) {
    s.MulPow10(k);
  } else {
    r.MulPow10(-k);
    m_plus.MulPow10(-k);
    m_minus.MulPow10(-k);
  }
  digits->clear();
  for (;;) {
    r.MulSmall(10);
    m_plus.MulSmall(10);
    m_minus.MulSmall(10);
    int d = 0;
    while (Compare(r, s) >= 0) {
      r.Sub(s);
      ++d;
    }
    const int c_low = Compare(r, m_minus);
    const int c_high = Compare(Sum(r, m_plus), s);
    const bool low = inclusive ? c_low <= 0 : c_low < 0;
    const bool high = inclusive ? c_high >= 0 : c_high > 0;
    if (!low && !high) {
      digits->push_back(static_cast<char>('0' + d));
      continue;
    }
    bool round_up;
    if (low && !high) {
      round_up = false;
    } else if (high && !low) {
      round_up = true;
    } else {
      BigInt twice = r;
      twice.ShiftLeft(1);
      const int c = Compare(twice, s);
      round_up = c > 0 || (c == 0 && (d & 1));
    }
    if (round_up) ++d;
    digits->push_back(static_cast<char>('0' + d));
    break;
  }
  // A round-up can carry (never past the first digit for a correct k).
  for (size_t i = digits->size(); i-- > 0;) {
    if ((*digits)[i] <= '9') break;
    (*digits)[i] = '0';
    if (i == 0) {
      digits->insert(digits->begin(), '1');
      ++k;
    } else {
      ++(*digits)[i - 1];
    }
  }
  while (digits->size() > 1 && digits->back() == '0') digits->pop_back();
  *k_out = k;
}

// std::to_chars' shortest scientific form "[-]d[.ddd]e[+-]xx" as digits and k.
template <typename T>
ShortestDecimal FromToChars(T value) {
  char buf[64];
  const std::to_chars_result result = std::to_chars(
      buf, buf + sizeof(buf), std::fabs(value), std::chars_format::scientific);
  const char* const end = result.ptr;
  const char* e = std::find(static_cast<const char*>(buf), end, 'e');
  ShortestDecimal out;
  for (const char* p = buf; p != e; ++p) {
    if (*p != '.') out.digits += *p;
  }
  while (out.digits.size() > 1 && out.digits.back() == '0') {
    out.digits.pop_back();
  }
  int exponent = 0;
  std::from_chars(e + 1 + (e[1] == '+' ? 1 : 0), end, exponent);
  out.k = exponent + 1;
  return out;
}

}  // namespace

ShortestDecimal ShortestDigits(double value) { return FromToChars(value); }
ShortestDecimal ShortestDigits(float value) { return FromToChars(value); }

ShortestDecimal ShortestDigitsOfBits(uint64_t bits, int exp_bits,
                                     int man_bits) {
  const int exp_field =
      static_cast<int>((bits >> man_bits) & ((1u << exp_bits) - 1));
  const uint64_t frac = bits & ((uint64_t{1} << man_bits) - 1);
  const int bias = (1 << (exp_bits - 1)) - 1;
  Decomposed v;
  if (exp_field == 0) {
    v = {frac, 1 - bias - man_bits, false};
  } else {
    v = {frac | (uint64_t{1} << man_bits), exp_field - bias - man_bits,
         frac == 0 && exp_field > 1};
  }
  ShortestDecimal out;
  FreeFormatDigits(v, &out.digits, &out.k);
  return out;
}

uint16_t RoundToSmallFloat(double value, int exp_bits, int man_bits) {
  uint64_t in;
  std::memcpy(&in, &value, sizeof in);
  const uint16_t sign =
      static_cast<uint16_t>((in >> 63) << (exp_bits + man_bits));
  const uint16_t exp_all_ones =
      static_cast<uint16_t>(((1u << exp_bits) - 1) << man_bits);
  const int in_exp_field = static_cast<int>((in >> 52) & 0x7ff);
  const uint64_t in_frac = in & ((uint64_t{1} << 52) - 1);
  if (in_exp_field == 0x7ff) {
    if (in_frac == 0) return sign | exp_all_ones;  // infinity
    // NaN: keep the top payload bits, force the quiet bit.
    const uint16_t payload = static_cast<uint16_t>(in_frac >> (52 - man_bits));
    return sign | exp_all_ones | payload |
           static_cast<uint16_t>(1u << (man_bits - 1));
  }
  if (in_exp_field == 0) return sign;  // zero or a double subnormal: too small
  const int bias = (1 << (exp_bits - 1)) - 1;
  const int emin = 1 - bias;
  const int e = in_exp_field - 1023;  // value = M * 2^(e - 52)
  if (e > bias) return sign | exp_all_ones;
  const uint64_t mantissa = in_frac | (uint64_t{1} << 52);
  // Quantum of the result: 2^q.
  const int q = std::max(e, emin) - man_bits;
  const int shift = q - (e - 52);  // >= 52 - man_bits > 0
  if (shift >= 64) return sign;
  uint64_t r = mantissa >> shift;
  const uint64_t rem = mantissa & ((uint64_t{1} << shift) - 1);
  const uint64_t half = uint64_t{1} << (shift - 1);
  if (rem > half || (rem == half && (r & 1))) ++r;
  // For normal results the biased exponent and the implicit bit add up; a
  // carry out of the mantissa moves into the exponent.
  const uint64_t bits =
      (static_cast<uint64_t>(std::max(e, emin) + bias - 1) << man_bits) + r;
  if (bits >= exp_all_ones) return sign | exp_all_ones;
  return sign | static_cast<uint16_t>(bits);
}

}  // namespace relu

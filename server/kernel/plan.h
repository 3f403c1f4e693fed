// Internal to the kernel library: the parameters of one call turned into the
// branch the Keras algorithm takes and its constants already converted to the
// tensor's dtype, plus the per-path entry points that run a plan over a range.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "server/kernel/relu_kernel.h"

namespace relu::kernel::internal {

// Which value `p` starts from (see the spec's algorithm).
enum class Positive : uint8_t {
  kPlain,      // p = max(x, 0)
  kRelu6,      // p = min(max(x, 0), 6)   (t == 0 and m == 6)
  kThreshold,  // p = x * D(x > D(t))     (t != 0)
};

// The branch and constants of one (dtype, params) pair. Every constant is
// already rounded to the dtype (held as a double: exact for every dtype).
struct Plan {
  bool leaky = false;  // leaky fast path: y = x > 0 ? x : x * leaky_slope
  bool slope = false;  // s != 0 (outside the leaky path): y = p - s * neg
  Positive positive = Positive::kPlain;
  bool clip = false;           // p = max(min(p, m), 0)
  double slope_d = 0.0;        // D(s)
  double leaky_slope_d = 0.0;  // D(float32(s))
  double threshold_d = 0.0;    // D(t)
  double max_d = 0.0;          // D(m), when clip
};

// Builds the plan for valid `params`. Inline because it runs once per call,
// also for tiny tensors. `static` (internal linkage) like Run below: an
// inline function compiled in a SIMD translation unit must never be the copy
// the linker keeps for the portable ones.
static inline Plan MakePlan(DType dtype, const Params& params);

// Rounds `value` to `dtype` the way the spec converts constants (float64
// directly; float16 and bfloat16 through float32).
double ConstantToDType(DType dtype, double value);

// Scalar float16 / bfloat16 conversions (round to nearest even, subnormals
// kept, NaN kept NaN).
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float BFloat16ToFloat(uint16_t b);
uint16_t FloatToBFloat16(float f);

// Runs `plan` over `n` elements on the calling thread. `large` says the
// whole job is far bigger than the caches (see kLargeJobBytes): the SIMD
// paths then walk four pages at a time and, out of place, write with
// non-temporal stores. The scalar path ignores it. Each function requires
// its ISA to be supported.
void RunScalar(DType dtype, const Plan& plan, const void* in, void* out,
               size_t n, bool large);
void RunAvx2(DType dtype, const Plan& plan, const void* in, void* out, size_t n,
             bool large);
void RunAvx512(DType dtype, const Plan& plan, const void* in, void* out,
               size_t n, bool large);

// Dispatches to the path of `isa`.
static inline void Run(Isa isa, DType dtype, const Plan& plan, const void* in,
                       void* out, size_t n, bool large) {
  switch (isa) {
    case Isa::kScalar:
      RunScalar(dtype, plan, in, out, n, large);
      return;
    case Isa::kAvx2:
      RunAvx2(dtype, plan, in, out, n, large);
      return;
    case Isa::kAvx512:
      RunAvx512(dtype, plan, in, out, n, large);
      return;
  }
}

// Jobs with at least this many input bytes count as large (see Run).
// Measured on the 2-core dev VM (2 MiB L2 per core, float32, one thread):
// up to 16 MiB the cached sequential loop wins (out of place 17 vs 13 GB/s);
// from 32 MiB on the page-interleaved loop wins, with non-temporal stores out
// of place (25 vs 16 GB/s at 32 MiB, 23 vs 14 at 256 MiB) and in place (29
// vs 24 GB/s at 256 MiB).
inline constexpr size_t kLargeJobBytes = size_t{24} << 20;

// Calls `f.template operator()<kLeaky, kSlope, kPositive, kClip>()` with
// the plan's branch as compile-time constants, so each branch is its own
// loop without per-element tests.
template <class F>
void DispatchBranch(const Plan& plan, F&& f) {
  if (plan.leaky) {
    f.template operator()<true, false, Positive::kPlain, false>();
    return;
  }
#define RELU_BRANCH_(S, P, C)                                    \
  if (plan.slope == S && plan.positive == P && plan.clip == C) { \
    f.template operator()<false, S, P, C>();                     \
    return;                                                      \
  }
  RELU_BRANCH_(false, Positive::kPlain, false)
  RELU_BRANCH_(false, Positive::kPlain, true)
  RELU_BRANCH_(false, Positive::kRelu6, false)
  RELU_BRANCH_(false, Positive::kThreshold, false)
  RELU_BRANCH_(false, Positive::kThreshold, true)
  RELU_BRANCH_(true, Positive::kPlain, false)
  RELU_BRANCH_(true, Positive::kPlain, true)
  RELU_BRANCH_(true, Positive::kRelu6, false)
  RELU_BRANCH_(true, Positive::kThreshold, false)
  RELU_BRANCH_(true, Positive::kThreshold, true)
#undef RELU_BRANCH_
  std::abort();  // MakePlan never builds relu6 together with clip
}

// Forces inlining of the per-vector code into the loops (gcc otherwise keeps
// some float16/bfloat16 steps as out-of-line calls).
#define RELU_KERNEL_ALWAYS_INLINE inline __attribute__((always_inline))

// The Keras algorithm over one value or vector. `Ops` supplies the vector
// type V and Add/Sub/Mul (exact IEEE ops of the compute type), Round (to
// the tensor's dtype), Neg, Max(a, b) = a < b ? b : a, Min(a, b) =
// b < a ? b : a, GtOneZero(x, t) = x > t ? 1 : 0 and
// SelectPositive(x, y) = x > 0 ? x : y, with its constants zero(), six(),
// t(), m(), s(), leaky_s(). Ops types must have internal linkage (an
// anonymous namespace in each path's translation unit) so that code built
// with one path's -m flags is never linked into another.
template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip, class Ops>
RELU_KERNEL_ALWAYS_INLINE typename Ops::V ReluOp(const Ops& o,
                                                 typename Ops::V x) {
  using V = typename Ops::V;
  if constexpr (kLeaky) {
    return o.SelectPositive(x, o.Round(o.Mul(x, o.leaky_s())));
  } else {
    V neg{};
    if constexpr (kSlope) {
      neg = o.Max(o.Round(o.Add(o.Neg(x), o.t())), o.zero());
    }
    V p;
    if constexpr (kPositive == Positive::kThreshold) {
      p = o.Mul(x, o.GtOneZero(x, o.t()));  // exact: x * 1 or x * 0
    } else if constexpr (kPositive == Positive::kRelu6) {
      p = o.Min(o.Max(x, o.zero()), o.six());
    } else {
      p = o.Max(x, o.zero());
    }
    if constexpr (kClip) {
      p = o.Max(o.Min(p, o.m()), o.zero());
    }
    if constexpr (kSlope) {
      return o.Round(o.Sub(p, o.Round(o.Mul(o.s(), neg))));
    } else {
      return p;
    }
  }
}

static inline Plan MakePlan(DType dtype, const Params& params) {
  Plan plan;
  const double s = params.negative_slope;
  const double t = params.threshold;
  const bool has_max = params.max_value.has_value();
  const double m = has_max ? *params.max_value : 0.0;
  // Zero converts to zero in every dtype: skip the conversions in the
  // common case (this runs once per call, also for tiny tensors).
  if (s != 0) {
    plan.slope_d = ConstantToDType(dtype, s);
    plan.leaky_slope_d =
        ConstantToDType(dtype, static_cast<double>(static_cast<float>(s)));
  }
  if (t != 0) plan.threshold_d = ConstantToDType(dtype, t);
  if (has_max) plan.max_d = ConstantToDType(dtype, m);
  if (s != 0 && !has_max && t == 0) {
    plan.leaky = true;
    return plan;
  }
  plan.slope = s != 0;
  if (t != 0) {
    plan.positive = Positive::kThreshold;
  } else if (has_max && m == 6) {
    plan.positive = Positive::kRelu6;
  }
  plan.clip = has_max && !(t == 0 && m == 6);
  return plan;
}

}  // namespace relu::kernel::internal

// The portable reference path: one element at a time, no vector
// instructions. Also the fallback on CPUs without AVX2.
#include <cstdint>
#include <cstring>

#include "server/kernel/plan.h"

namespace relu::kernel::internal {
namespace {

// Rounding of float32 results to the tensor's dtype.
struct RoundNone {
  template <class T>
  static T Apply(T v) {
    return v;
  }
};
struct RoundHalf {
  static float Apply(float v) { return HalfToFloat(FloatToHalf(v)); }
};
struct RoundBFloat16 {
  static float Apply(float v) { return BFloat16ToFloat(FloatToBFloat16(v)); }
};

// Scalar ops of the spec for compute type T.
template <class T, class Rounding>
struct ScalarOps {
  using V = T;
  explicit ScalarOps(const Plan& plan)
      : t_(static_cast<T>(plan.threshold_d)),
        m_(static_cast<T>(plan.max_d)),
        s_(static_cast<T>(plan.slope_d)),
        leaky_s_(static_cast<T>(plan.leaky_slope_d)) {}
  V Add(V a, V b) const { return a + b; }
  V Sub(V a, V b) const { return a - b; }
  V Mul(V a, V b) const { return a * b; }
  V Neg(V a) const { return -a; }
  V Round(V a) const { return Rounding::Apply(a); }
  V Max(V a, V b) const { return a < b ? b : a; }
  V Min(V a, V b) const { return b < a ? b : a; }
  V GtOneZero(V x, V t) const { return x > t ? T(1) : T(0); }
  V SelectPositive(V x, V y) const { return x > T(0) ? x : y; }
  V zero() const { return T(0); }
  V six() const { return T(6); }
  V t() const { return t_; }
  V m() const { return m_; }
  V s() const { return s_; }
  V leaky_s() const { return leaky_s_; }
  T t_, m_, s_, leaky_s_;
};

// Element storage <-> compute type.
struct IoFloat {
  using Storage = float;
  static float Load(float v) { return v; }
  static float Store(float v) { return v; }
};
struct IoDouble {
  using Storage = double;
  static double Load(double v) { return v; }
  static double Store(double v) { return v; }
};
struct IoHalf {
  using Storage = uint16_t;
  static float Load(uint16_t v) { return HalfToFloat(v); }
  static uint16_t Store(float v) { return FloatToHalf(v); }  // exact here
};
struct IoBFloat16 {
  using Storage = uint16_t;
  static float Load(uint16_t v) { return BFloat16ToFloat(v); }
  static uint16_t Store(float v) { return FloatToBFloat16(v); }  // exact here
};

template <class Io, class Ops>
struct ScalarLoop {
  using T = typename Io::Storage;
  const Plan& plan;
  const uint8_t* in;  // any alignment: read with memcpy
  uint8_t* out;       // any alignment: written with memcpy
  size_t n;
  template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip>
  void operator()() const {
    const Ops ops(plan);
    for (size_t i = 0; i < n; ++i) {
      T value;
      std::memcpy(&value, in + i * sizeof(T), sizeof(T));
      const T result = Io::Store(
          ReluOp<kLeaky, kSlope, kPositive, kClip>(ops, Io::Load(value)));
      std::memcpy(out + i * sizeof(T), &result, sizeof(T));
    }
  }
};

template <class Io, class Ops>
void RunTyped(const Plan& plan, const void* in, void* out, size_t n) {
  DispatchBranch(plan,
                 ScalarLoop<Io, Ops>{plan, static_cast<const uint8_t*>(in),
                                     static_cast<uint8_t*>(out), n});
}

}  // namespace

void RunScalar(DType dtype, const Plan& plan, const void* in, void* out,
               size_t n, bool /*large*/) {
  switch (dtype) {
    case DType::kFloat32:
      RunTyped<IoFloat, ScalarOps<float, RoundNone>>(plan, in, out, n);
      return;
    case DType::kFloat64:
      RunTyped<IoDouble, ScalarOps<double, RoundNone>>(plan, in, out, n);
      return;
    case DType::kFloat16:
      RunTyped<IoHalf, ScalarOps<float, RoundHalf>>(plan, in, out, n);
      return;
    case DType::kBFloat16:
      RunTyped<IoBFloat16, ScalarOps<float, RoundBFloat16>>(plan, in, out, n);
      return;
  }
}

}  // namespace relu::kernel::internal

// The AVX2 path (with F16C for float16): one 32-byte vector per step (8
// float32, 4 float64, 16 float16/bfloat16 computed as two float32 halves).
// This translation unit alone is compiled with -mavx2 -mf16c, never -mfma
// (fused ops would change results); RunAvx2 may only be called when
// IsaSupported(Isa::kAvx2).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "server/kernel/plan.h"
#include "server/kernel/vector_loop.h"

namespace relu::kernel::internal {
namespace {

struct RoundNone {
  static __m256 Apply(__m256 v) { return v; }
};
struct RoundHalf {
  static __m256 Apply(__m256 v) {
    return _mm256_cvtph_ps(
        _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
};
// Round to nearest even on the integer bits; subnormals kept, NaN kept NaN.
struct RoundBFloat16 {
  static __m256 Apply(__m256 v) {
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i lsb =
        _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_add_epi32(
        _mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), lsb);
    const __m256i quiet_nan =
        _mm256_or_si256(bits, _mm256_set1_epi32(0x00400000));
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    const __m256 chosen = _mm256_blendv_ps(_mm256_castsi256_ps(rounded),
                                           _mm256_castsi256_ps(quiet_nan), nan);
    return _mm256_and_ps(chosen,
                         _mm256_castsi256_ps(_mm256_set1_epi32(0xffff0000u)));
  }
};

template <class Rounding>
struct OpsF32 {
  using V = __m256;
  explicit OpsF32(const Plan& plan)
      : zero_(_mm256_setzero_ps()),
        one_(_mm256_set1_ps(1.0f)),
        six_(_mm256_set1_ps(6.0f)),
        sign_(_mm256_set1_ps(-0.0f)),
        t_(_mm256_set1_ps(static_cast<float>(plan.threshold_d))),
        m_(_mm256_set1_ps(static_cast<float>(plan.max_d))),
        s_(_mm256_set1_ps(static_cast<float>(plan.slope_d))),
        leaky_s_(_mm256_set1_ps(static_cast<float>(plan.leaky_slope_d))) {}
  static V Add(V a, V b) { return _mm256_add_ps(a, b); }
  static V Sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V Mul(V a, V b) { return _mm256_mul_ps(a, b); }
  V Neg(V a) const { return _mm256_xor_ps(a, sign_); }
  static V Round(V a) { return Rounding::Apply(a); }
  // maxps(b, a) = b > a ? b : a = a < b ? b : a: `a` wins ties and NaN.
  static V Max(V a, V b) { return _mm256_max_ps(b, a); }
  static V Min(V a, V b) { return _mm256_min_ps(b, a); }
  V GtOneZero(V x, V t) const {
    return _mm256_and_ps(_mm256_cmp_ps(x, t, _CMP_GT_OQ), one_);
  }
  V SelectPositive(V x, V y) const {
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, zero_, _CMP_GT_OQ));
  }
  V zero() const { return zero_; }
  V six() const { return six_; }
  V t() const { return t_; }
  V m() const { return m_; }
  V s() const { return s_; }
  V leaky_s() const { return leaky_s_; }
  V zero_, one_, six_, sign_, t_, m_, s_, leaky_s_;
};

struct OpsF64 {
  using V = __m256d;
  explicit OpsF64(const Plan& plan)
      : zero_(_mm256_setzero_pd()),
        one_(_mm256_set1_pd(1.0)),
        six_(_mm256_set1_pd(6.0)),
        sign_(_mm256_set1_pd(-0.0)),
        t_(_mm256_set1_pd(plan.threshold_d)),
        m_(_mm256_set1_pd(plan.max_d)),
        s_(_mm256_set1_pd(plan.slope_d)),
        leaky_s_(_mm256_set1_pd(plan.leaky_slope_d)) {}
  static V Add(V a, V b) { return _mm256_add_pd(a, b); }
  static V Sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V Mul(V a, V b) { return _mm256_mul_pd(a, b); }
  V Neg(V a) const { return _mm256_xor_pd(a, sign_); }
  static V Round(V a) { return a; }
  static V Max(V a, V b) { return _mm256_max_pd(b, a); }
  static V Min(V a, V b) { return _mm256_min_pd(b, a); }
  V GtOneZero(V x, V t) const {
    return _mm256_and_pd(_mm256_cmp_pd(x, t, _CMP_GT_OQ), one_);
  }
  V SelectPositive(V x, V y) const {
    return _mm256_blendv_pd(y, x, _mm256_cmp_pd(x, zero_, _CMP_GT_OQ));
  }
  V zero() const { return zero_; }
  V six() const { return six_; }
  V t() const { return t_; }
  V m() const { return m_; }
  V s() const { return s_; }
  V leaky_s() const { return leaky_s_; }
  V zero_, one_, six_, sign_, t_, m_, s_, leaky_s_;
};

struct IoF32 {
  using Storage = float;
  using Raw = __m256;
  static Raw Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, Raw v) { _mm256_storeu_ps(p, v); }
  static void Stream(float* p, Raw v) { _mm256_stream_ps(p, v); }
  // Lanes below `count` (< 8) set.
  static __m256i Mask(size_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Raw LoadPartial(const float* p, size_t count) {
    return _mm256_maskload_ps(p, Mask(count));
  }
  static void StorePartial(float* p, size_t count, Raw v) {
    _mm256_maskstore_ps(p, Mask(count), v);
  }
  template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip>
  static RELU_KERNEL_ALWAYS_INLINE Raw Compute(const OpsF32<RoundNone>& o,
                                               Raw x) {
    return ReluOp<kLeaky, kSlope, kPositive, kClip>(o, x);
  }
};

struct IoF64 {
  using Storage = double;
  using Raw = __m256d;
  static Raw Load(const double* p) { return _mm256_loadu_pd(p); }
  static void Store(double* p, Raw v) { _mm256_storeu_pd(p, v); }
  static void Stream(double* p, Raw v) { _mm256_stream_pd(p, v); }
  // Lanes below `count` (< 4) set.
  static __m256i Mask(size_t count) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<int64_t>(count)),
                              _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static Raw LoadPartial(const double* p, size_t count) {
    return _mm256_maskload_pd(p, Mask(count));
  }
  static void StorePartial(double* p, size_t count, Raw v) {
    _mm256_maskstore_pd(p, Mask(count), v);
  }
  template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip>
  static RELU_KERNEL_ALWAYS_INLINE Raw Compute(const OpsF64& o, Raw x) {
    return ReluOp<kLeaky, kSlope, kPositive, kClip>(o, x);
  }
};

// 16 16-bit elements per vector, computed as two float32 halves. AVX2 has
// no 16-bit masked load/store: the partial step goes through a small stack
// buffer.
template <class Convert>
struct Io16 {
  using Storage = uint16_t;
  using Raw = __m256i;
  static Raw Load(const uint16_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static void Store(uint16_t* p, Raw v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
  }
  static void Stream(uint16_t* p, Raw v) {
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p), v);
  }
  static Raw LoadPartial(const uint16_t* p, size_t count) {
    alignas(32) uint16_t buffer[16] = {};
    std::memcpy(buffer, p, count * sizeof(uint16_t));
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(buffer));
  }
  static void StorePartial(uint16_t* p, size_t count, Raw v) {
    alignas(32) uint16_t buffer[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(buffer), v);
    std::memcpy(p, buffer, count * sizeof(uint16_t));
  }
  template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip>
  static RELU_KERNEL_ALWAYS_INLINE Raw Compute(const typename Convert::Ops& o,
                                               Raw x) {
    const __m256 lo = Convert::ToFloat(_mm256_castsi256_si128(x));
    const __m256 hi = Convert::ToFloat(_mm256_extracti128_si256(x, 1));
    const __m128i lo_out =
        Convert::FromFloat(ReluOp<kLeaky, kSlope, kPositive, kClip>(o, lo));
    const __m128i hi_out =
        Convert::FromFloat(ReluOp<kLeaky, kSlope, kPositive, kClip>(o, hi));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo_out), hi_out, 1);
  }
};

// FromFloat receives values already exact in the dtype.
struct ConvertHalf {
  using Ops = OpsF32<RoundHalf>;
  static __m256 ToFloat(__m128i h) { return _mm256_cvtph_ps(h); }
  static __m128i FromFloat(__m256 f) {
    return _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
};
// bfloat16 uses Io16's loads and stores with its own Compute (below).
struct ConvertBFloat16 {
  using Ops = OpsF32<RoundBFloat16>;
};

// 16 bfloat16 per vector without width conversions: each 32-bit lane holds
// two elements, and a bfloat16 shifted into the high half is its float32.
// The even elements (low halves) are shifted up, the odd ones masked in
// place; every result is exact in bfloat16 (low half zero), so the two
// halves recombine with one shift and one 16-bit blend.
struct IoBFloat16 : Io16<ConvertBFloat16> {
  template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip>
  static RELU_KERNEL_ALWAYS_INLINE Raw Compute(const ConvertBFloat16::Ops& o,
                                               Raw x) {
    const __m256 even = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
    const __m256 odd = _mm256_castsi256_ps(
        _mm256_and_si256(x, _mm256_set1_epi32(0xffff0000u)));
    const __m256i even_out =
        _mm256_castps_si256(ReluOp<kLeaky, kSlope, kPositive, kClip>(o, even));
    const __m256i odd_out =
        _mm256_castps_si256(ReluOp<kLeaky, kSlope, kPositive, kClip>(o, odd));
    // imm 0xaa: odd 16-bit lanes of each 128-bit half from odd_out.
    return _mm256_blend_epi16(_mm256_srli_epi32(even_out, 16), odd_out, 0xaa);
  }
};

template <class Io, class Ops>
void RunTyped(const Plan& plan, const void* in, void* out, size_t n,
              bool large) {
  using T = typename Io::Storage;
  DispatchBranch(plan, VectorLoop<Io, Ops, 32>{plan, static_cast<const T*>(in),
                                               static_cast<T*>(out), n, large});
}

}  // namespace

void RunAvx2(DType dtype, const Plan& plan, const void* in, void* out, size_t n,
             bool large) {
  switch (dtype) {
    case DType::kFloat32:
      RunTyped<IoF32, OpsF32<RoundNone>>(plan, in, out, n, large);
      return;
    case DType::kFloat64:
      RunTyped<IoF64, OpsF64>(plan, in, out, n, large);
      return;
    case DType::kFloat16:
      RunTyped<Io16<ConvertHalf>, ConvertHalf::Ops>(plan, in, out, n, large);
      return;
    case DType::kBFloat16:
      RunTyped<IoBFloat16, ConvertBFloat16::Ops>(plan, in, out, n, large);
      return;
  }
}

}  // namespace relu::kernel::internal

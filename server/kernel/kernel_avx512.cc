// The AVX-512 path (F, BW, VL): one 64-byte vector per step for every dtype
// (16 float32, 8 float64, 32 float16/bfloat16 computed as two float32
// halves). This translation unit alone is compiled with -mavx512f
// -mavx512bw -mavx512vl; RunAvx512 may only be called when
// IsaSupported(Isa::kAvx512).
#include <immintrin.h>

#include <cstdint>

#include "server/kernel/plan.h"
#include "server/kernel/vector_loop.h"

namespace relu::kernel::internal {
namespace {

// Rounding of float32 vectors to the tensor's dtype.
struct RoundNone {
  static __m512 Apply(__m512 v) { return v; }
};
struct RoundHalf {
  static __m512 Apply(__m512 v) {
    return _mm512_cvtph_ps(
        _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
};
// Round to nearest even on the integer bits: keeps subnormals (unlike
// vcvtneps2bf16) and keeps NaN a (quiet) NaN.
struct RoundBFloat16 {
  static __m512 Apply(__m512 v) {
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i lsb =
        _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_add_epi32(
        _mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lsb);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    rounded =
        _mm512_mask_or_epi32(rounded, nan, bits, _mm512_set1_epi32(0x00400000));
    return _mm512_castsi512_ps(
        _mm512_and_si512(rounded, _mm512_set1_epi32(0xffff0000u)));
  }
};

template <class Rounding>
struct OpsF32 {
  using V = __m512;
  explicit OpsF32(const Plan& plan)
      : zero_(_mm512_setzero_ps()),
        one_(_mm512_set1_ps(1.0f)),
        six_(_mm512_set1_ps(6.0f)),
        t_(_mm512_set1_ps(static_cast<float>(plan.threshold_d))),
        m_(_mm512_set1_ps(static_cast<float>(plan.max_d))),
        s_(_mm512_set1_ps(static_cast<float>(plan.slope_d))),
        leaky_s_(_mm512_set1_ps(static_cast<float>(plan.leaky_slope_d))) {}
  static V Add(V a, V b) { return _mm512_add_ps(a, b); }
  static V Sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V Mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V Neg(V a) {
    return _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN)));
  }
  static V Round(V a) { return Rounding::Apply(a); }
  // maxps(b, a) = b > a ? b : a = a < b ? b : a: `a` wins ties and NaN.
  static V Max(V a, V b) { return _mm512_max_ps(b, a); }
  static V Min(V a, V b) { return _mm512_min_ps(b, a); }
  V GtOneZero(V x, V t) const {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, t, _CMP_GT_OQ), one_);
  }
  V SelectPositive(V x, V y) const {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero_, _CMP_GT_OQ), y, x);
  }
  V zero() const { return zero_; }
  V six() const { return six_; }
  V t() const { return t_; }
  V m() const { return m_; }
  V s() const { return s_; }
  V leaky_s() const { return leaky_s_; }
  V zero_, one_, six_, t_, m_, s_, leaky_s_;
};

struct OpsF64 {
  using V = __m512d;
  explicit OpsF64(const Plan& plan)
      : zero_(_mm512_setzero_pd()),
        one_(_mm512_set1_pd(1.0)),
        six_(_mm512_set1_pd(6.0)),
        t_(_mm512_set1_pd(plan.threshold_d)),
        m_(_mm512_set1_pd(plan.max_d)),
        s_(_mm512_set1_pd(plan.slope_d)),
        leaky_s_(_mm512_set1_pd(plan.leaky_slope_d)) {}
  static V Add(V a, V b) { return _mm512_add_pd(a, b); }
  static V Sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V Mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V Neg(V a) {
    return _mm512_castsi512_pd(
        _mm512_xor_si512(_mm512_castpd_si512(a), _mm512_set1_epi64(INT64_MIN)));
  }
  static V Round(V a) { return a; }
  static V Max(V a, V b) { return _mm512_max_pd(b, a); }
  static V Min(V a, V b) { return _mm512_min_pd(b, a); }
  V GtOneZero(V x, V t) const {
    return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, t, _CMP_GT_OQ), one_);
  }
  V SelectPositive(V x, V y) const {
    return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, zero_, _CMP_GT_OQ), y, x);
  }
  V zero() const { return zero_; }
  V six() const { return six_; }
  V t() const { return t_; }
  V m() const { return m_; }
  V s() const { return s_; }
  V leaky_s() const { return leaky_s_; }
  V zero_, one_, six_, t_, m_, s_, leaky_s_;
};

struct IoF32 {
  using Storage = float;
  using Raw = __m512;
  static Raw Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, Raw v) { _mm512_storeu_ps(p, v); }
  static void Stream(float* p, Raw v) { _mm512_stream_ps(p, v); }
  static __mmask16 Mask(size_t count) {
    return static_cast<__mmask16>((1u << count) - 1);  // count < 16
  }
  static Raw LoadPartial(const float* p, size_t count) {
    return _mm512_maskz_loadu_ps(Mask(count), p);
  }
  static void StorePartial(float* p, size_t count, Raw v) {
    _mm512_mask_storeu_ps(p, Mask(count), v);
  }
  template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip>
  static RELU_KERNEL_ALWAYS_INLINE Raw Compute(const OpsF32<RoundNone>& o,
                                               Raw x) {
    return ReluOp<kLeaky, kSlope, kPositive, kClip>(o, x);
  }
};

struct IoF64 {
  using Storage = double;
  using Raw = __m512d;
  static Raw Load(const double* p) { return _mm512_loadu_pd(p); }
  static void Store(double* p, Raw v) { _mm512_storeu_pd(p, v); }
  static void Stream(double* p, Raw v) { _mm512_stream_pd(p, v); }
  static __mmask8 Mask(size_t count) {
    return static_cast<__mmask8>((1u << count) - 1);  // count < 8
  }
  static Raw LoadPartial(const double* p, size_t count) {
    return _mm512_maskz_loadu_pd(Mask(count), p);
  }
  static void StorePartial(double* p, size_t count, Raw v) {
    _mm512_mask_storeu_pd(p, Mask(count), v);
  }
  template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip>
  static RELU_KERNEL_ALWAYS_INLINE Raw Compute(const OpsF64& o, Raw x) {
    return ReluOp<kLeaky, kSlope, kPositive, kClip>(o, x);
  }
};

// 32 16-bit elements per vector, computed as two float32 halves.
template <class Convert>
struct Io16 {
  using Storage = uint16_t;
  using Raw = __m512i;
  static Raw Load(const uint16_t* p) { return _mm512_loadu_si512(p); }
  static void Store(uint16_t* p, Raw v) { _mm512_storeu_si512(p, v); }
  static void Stream(uint16_t* p, Raw v) {
    _mm512_stream_si512(reinterpret_cast<__m512i*>(p), v);
  }
  static __mmask32 Mask(size_t count) {
    return static_cast<__mmask32>((uint64_t{1} << count) - 1);  // count < 32
  }
  static Raw LoadPartial(const uint16_t* p, size_t count) {
    return _mm512_maskz_loadu_epi16(Mask(count), p);
  }
  static void StorePartial(uint16_t* p, size_t count, Raw v) {
    _mm512_mask_storeu_epi16(p, Mask(count), v);
  }
  template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip>
  static RELU_KERNEL_ALWAYS_INLINE Raw Compute(const typename Convert::Ops& o,
                                               Raw x) {
    const __m512 lo = Convert::ToFloat(_mm512_castsi512_si256(x));
    const __m512 hi = Convert::ToFloat(_mm512_extracti64x4_epi64(x, 1));
    const __m256i lo_out =
        Convert::FromFloat(ReluOp<kLeaky, kSlope, kPositive, kClip>(o, lo));
    const __m256i hi_out =
        Convert::FromFloat(ReluOp<kLeaky, kSlope, kPositive, kClip>(o, hi));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo_out), hi_out, 1);
  }
};

// FromFloat receives values already exact in the dtype.
struct ConvertHalf {
  using Ops = OpsF32<RoundHalf>;
  static __m512 ToFloat(__m256i h) { return _mm512_cvtph_ps(h); }
  static __m256i FromFloat(__m512 f) {
    return _mm512_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
};
// bfloat16 uses Io16's loads and stores with its own Compute (below).
struct ConvertBFloat16 {
  using Ops = OpsF32<RoundBFloat16>;
};

// 32 bfloat16 per vector without width conversions: each 32-bit lane holds
// two elements, and a bfloat16 shifted into the high half is its float32.
// The even elements (low halves) are shifted up, the odd ones masked in
// place; every result is exact in bfloat16 (low half zero), so the two
// halves recombine with one shift and one 16-bit blend.
struct IoBFloat16 : Io16<ConvertBFloat16> {
  template <bool kLeaky, bool kSlope, Positive kPositive, bool kClip>
  static RELU_KERNEL_ALWAYS_INLINE Raw Compute(const ConvertBFloat16::Ops& o,
                                               Raw x) {
    const __m512 even = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
    const __m512 odd = _mm512_castsi512_ps(
        _mm512_and_si512(x, _mm512_set1_epi32(0xffff0000u)));
    const __m512i even_out =
        _mm512_castps_si512(ReluOp<kLeaky, kSlope, kPositive, kClip>(o, even));
    const __m512i odd_out =
        _mm512_castps_si512(ReluOp<kLeaky, kSlope, kPositive, kClip>(o, odd));
    return _mm512_mask_blend_epi16(0xaaaaaaaau, _mm512_srli_epi32(even_out, 16),
                                   odd_out);
  }
};

template <class Io, class Ops>
void RunTyped(const Plan& plan, const void* in, void* out, size_t n,
              bool large) {
  using T = typename Io::Storage;
  DispatchBranch(plan, VectorLoop<Io, Ops, 64>{plan, static_cast<const T*>(in),
                                               static_cast<T*>(out), n, large});
}

}  // namespace

void RunAvx512(DType dtype, const Plan& plan, const void* in, void* out,
               size_t n, bool large) {
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

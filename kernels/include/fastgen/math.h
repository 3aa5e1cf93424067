// Stable sigmoid / softplus / log-sum-exp and the elementary functions they need, written with
// +, *, fma, sqrt and bit operations only. Reasons:
//  * one definition for CPU and GPU: the results are bitwise the same on both when compiled
//    without contraction (-ffp-contract=off on the host, --fmad=false for NVRTC), which libm's
//    and CUDA's own expf/logf do not promise;
//  * branch-free, so the CPU loops that call them vectorise (glibc's scalar expf does not).
// Accuracy: within a few ulp of the correctly rounded result on the ranges the kernels use.
#pragma once
#include "common.h"

namespace fastgen {

template <typename T> struct MathConst;
template <> struct MathConst<float> {
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693145751953125f;
  static constexpr float ln2_lo = 1.42860676533018690e-06f;
  static constexpr float exp_lo = -87.0f;  // keeps 2^n a normal number
  static constexpr float exp_hi = 88.0f;
};
template <> struct MathConst<double> {
  static constexpr double log2e = 1.4426950408889634074;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr double exp_lo = -708.0;
  static constexpr double exp_hi = 709.0;
};

FG_HD float fg_fma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return fmaf(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
FG_HD double fg_fma(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return fma(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
// Round to the nearest integer (ties to even) by the add-and-subtract of 1.5 * 2^(mantissa
// bits): exact for |x| < 2^22 (float) / 2^51 (double) under IEEE round-to-nearest, vectorises
// (std::floor does not, without -fno-trapping-math), and gives the same bits on every backend.
FG_HD float round_nearest(float x) {
  const float magic = 12582912.0f;  // 1.5 * 2^23
  return (x + magic) - magic;
}
FG_HD double round_nearest(double x) {
  const double magic = 6755399441055744.0;  // 1.5 * 2^52
  return (x + magic) - magic;
}
FG_HD float fg_sqrt(float x) {
#if defined(__CUDA_ARCH__)
  return sqrtf(x);
#else
  return std::sqrt(x);
#endif
}
FG_HD double fg_sqrt(double x) {
#if defined(__CUDA_ARCH__)
  return ::sqrt(x);
#else
  return std::sqrt(x);
#endif
}
template <typename T> FG_HD T fg_min(T a, T b) { return a < b ? a : b; }
template <typename T> FG_HD T fg_max(T a, T b) { return a > b ? a : b; }
template <typename T> FG_HD T fg_abs(T a) { return a < T(0) ? -a : a; }

// 2^n for integral n inside the normal range.
FG_HD float pow2i(float n) { return bits_as_float(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23); }
FG_HD double pow2i(double n) { return bits_as_double(static_cast<uint64_t>(static_cast<int64_t>(n) + 1023) << 52); }

// exp(r) for |r| <= ln2/2: Taylor polynomial, degree 7 (float) / 13 (double), Horner with fma.
FG_HD float exp_reduced(float r) {
  float p = 1.0f / 5040.0f;
  p = fg_fma(p, r, 1.0f / 720.0f);
  p = fg_fma(p, r, 1.0f / 120.0f);
  p = fg_fma(p, r, 1.0f / 24.0f);
  p = fg_fma(p, r, 1.0f / 6.0f);
  p = fg_fma(p, r, 0.5f);
  p = fg_fma(p, r, 1.0f);
  return fg_fma(p, r, 1.0f);
}
FG_HD double exp_reduced(double r) {
  double p = 1.0 / 6227020800.0;
  p = fg_fma(p, r, 1.0 / 479001600.0);
  p = fg_fma(p, r, 1.0 / 39916800.0);
  p = fg_fma(p, r, 1.0 / 3628800.0);
  p = fg_fma(p, r, 1.0 / 362880.0);
  p = fg_fma(p, r, 1.0 / 40320.0);
  p = fg_fma(p, r, 1.0 / 5040.0);
  p = fg_fma(p, r, 1.0 / 720.0);
  p = fg_fma(p, r, 1.0 / 120.0);
  p = fg_fma(p, r, 1.0 / 24.0);
  p = fg_fma(p, r, 1.0 / 6.0);
  p = fg_fma(p, r, 0.5);
  p = fg_fma(p, r, 1.0);
  return fg_fma(p, r, 1.0);
}

// exp(x), x clamped to the range where the result is a normal number (callers only need
// exp(-|x|) <= 1 and modest positive arguments). NaN gives NaN: the clamp alone would make it
// exp_lo, and every formula built on fg_exp (sigmoid, softplus, the samplers) a number.
template <typename T> FG_HD T fg_exp(T x) {
  using C = MathConst<T>;
  const T c = fg_min(fg_max(x, C::exp_lo), C::exp_hi);
  const T n = round_nearest(c * C::log2e);
  T r = fg_fma(n, -C::ln2_hi, c);
  r = fg_fma(n, -C::ln2_lo, r);
  const T y = exp_reduced(r) * pow2i(n);
  return x == x ? y : x;
}

// 2 * atanh(s) = log((1 + s) / (1 - s)) as an odd series in s; |s| <= 1/3.
// Terms: 7 (float) / 16 (double) are enough for |s| <= 1/3 (ratio s^2 <= 1/9).
FG_HD float two_atanh_series(float s) {
  const float s2 = s * s;
  float p = 1.0f / 15.0f;
  p = fg_fma(p, s2, 1.0f / 13.0f);
  p = fg_fma(p, s2, 1.0f / 11.0f);
  p = fg_fma(p, s2, 1.0f / 9.0f);
  p = fg_fma(p, s2, 1.0f / 7.0f);
  p = fg_fma(p, s2, 1.0f / 5.0f);
  p = fg_fma(p, s2, 1.0f / 3.0f);
  p = fg_fma(p, s2, 1.0f);
  return 2.0f * s * p;
}
FG_HD double two_atanh_series(double s) {
  const double s2 = s * s;
  double p = 1.0 / 33.0;
  for (int k = 15; k >= 1; --k) p = fg_fma(p, s2, 1.0 / (2 * k - 1));
  return 2.0 * s * p;
}

// log(1 + e) for e in [0, 1]: exact in relative terms even for tiny e.
template <typename T> FG_HD T log1p_unit(T e) { return two_atanh_series(e / (T(2) + e)); }

// log(u) for positive normal u.
FG_HD float fg_log(float u) {
  const uint32_t bits = float_as_bits(u);
  float e = static_cast<float>(static_cast<int32_t>(bits >> 23) - 127);
  float m = bits_as_float((bits & 0x007FFFFFu) | 0x3F800000u);  // [1, 2)
  const bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1.0f : e;
  const float lm = two_atanh_series((m - 1.0f) / (m + 1.0f));
  return fg_fma(e, MathConst<float>::ln2_hi, fg_fma(e, MathConst<float>::ln2_lo, lm));
}
FG_HD double fg_log(double u) {
  const uint64_t bits = double_as_bits(u);
  double e = static_cast<double>(static_cast<int64_t>(bits >> 52) - 1023);
  double m = bits_as_double((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
  const bool big = m > 1.4142135623730951;
  m = big ? m * 0.5 : m;
  e = big ? e + 1.0 : e;
  const double lm = two_atanh_series((m - 1.0) / (m + 1.0));
  return fg_fma(e, MathConst<double>::ln2_hi, fg_fma(e, MathConst<double>::ln2_lo, lm));
}

// Numerically stable logistic function: never overflows; exactly 1 for large x, and for very
// negative x fg_exp's floor (exp(exp_lo): about 1.6e-38 in float, 3e-308 in double), not 0;
// NaN stays NaN (through fg_exp).
template <typename T> FG_HD T sigmoid(T x) {
  const T e = fg_exp(-fg_abs(x));
  const T r = T(1) / (T(1) + e);
  return x >= T(0) ? r : e * r;
}

// softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); NaN stays NaN (through fg_exp).
template <typename T> FG_HD T softplus(T x) { return fg_max(x, T(0)) + log1p_unit(fg_exp(-fg_abs(x))); }

// log(sigmoid(x)) = -softplus(-x).
template <typename T> FG_HD T log_sigmoid(T x) { return -softplus(-x); }

// log(exp(a) + exp(b)) without overflow; NaN if either is NaN (fg_max / fg_min drop a NaN).
template <typename T> FG_HD T log_add_exp(T a, T b) {
  const T hi = fg_max(a, b), lo = fg_min(a, b);
  const T y = hi + log1p_unit(fg_exp(lo - hi));
  return (a == a && b == b) ? y : a + b;
}

// sin(2 pi u) and cos(2 pi u) for u in [0, 1): quadrant reduction and Taylor polynomials on
// [-pi/4, pi/4].
FG_HD void sincos_poly(float x, float& s, float& c) {
  const float x2 = x * x;
  float ps = -1.0f / 39916800.0f;
  ps = fg_fma(ps, x2, 1.0f / 362880.0f);
  ps = fg_fma(ps, x2, -1.0f / 5040.0f);
  ps = fg_fma(ps, x2, 1.0f / 120.0f);
  ps = fg_fma(ps, x2, -1.0f / 6.0f);
  s = fg_fma(ps * x2, x, x);
  float pc = 1.0f / 479001600.0f;
  pc = fg_fma(pc, x2, -1.0f / 3628800.0f);
  pc = fg_fma(pc, x2, 1.0f / 40320.0f);
  pc = fg_fma(pc, x2, -1.0f / 720.0f);
  pc = fg_fma(pc, x2, 1.0f / 24.0f);
  pc = fg_fma(pc, x2, -0.5f);
  c = fg_fma(pc, x2, 1.0f);
}
FG_HD void sincos_poly(double x, double& s, double& c) {
  const double x2 = x * x;
  double ps = -1.0 / 1307674368000.0;  // -1/15!
  ps = fg_fma(ps, x2, 1.0 / 6227020800.0);
  ps = fg_fma(ps, x2, -1.0 / 39916800.0);
  ps = fg_fma(ps, x2, 1.0 / 362880.0);
  ps = fg_fma(ps, x2, -1.0 / 5040.0);
  ps = fg_fma(ps, x2, 1.0 / 120.0);
  ps = fg_fma(ps, x2, -1.0 / 6.0);
  s = fg_fma(ps * x2, x, x);
  double pc = 1.0 / 20922789888000.0;  // 1/16!
  pc = fg_fma(pc, x2, -1.0 / 87178291200.0);
  pc = fg_fma(pc, x2, 1.0 / 479001600.0);
  pc = fg_fma(pc, x2, -1.0 / 3628800.0);
  pc = fg_fma(pc, x2, 1.0 / 40320.0);
  pc = fg_fma(pc, x2, -1.0 / 720.0);
  pc = fg_fma(pc, x2, 1.0 / 24.0);
  pc = fg_fma(pc, x2, -0.5);
  c = fg_fma(pc, x2, 1.0);
}
template <typename T> FG_HD void sincos_2pi(T u, T& s, T& c) {
  const T t = T(4) * u;
  const T q = round_nearest(t);
  const T x = (t - q) * T(1.5707963267948966);  // (t - q) in [-1/2, 1/2]
  T s0, c0;
  sincos_poly(x, s0, c0);
  const int quadrant = static_cast<int>(q) & 3;
  // sin(x + q pi/2), cos(x + q pi/2)
  s = quadrant == 0 ? s0 : quadrant == 1 ? c0 : quadrant == 2 ? -s0 : -c0;
  c = quadrant == 0 ? c0 : quadrant == 1 ? -s0 : quadrant == 2 ? -c0 : s0;
}

}  // namespace fastgen

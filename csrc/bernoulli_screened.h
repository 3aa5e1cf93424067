// Bernoulli states from logits with AVX-512, screened: the exact draw is 1 iff u < sigmoid(x)
// with the shared sigmoid of fastgen/math.h (a degree-7/13 exp and a division). Most draws are
// decided far from that boundary, so a block of lanes is first compared with a cheap estimate
// of the sigmoid (degree-4 exp2, 14-bit reciprocal) whose error is bounded well below
// kScreenMargin; only a block with some |u - estimate| < kScreenMargin takes the exact sigmoid
// (the same C++ as the generic loop), so the states are bitwise those of the exact rule.
// The same pass writes the 0/1 states, the index list and the bit mask, from the comparison's
// mask register, instead of storing the states and reading them back.
// Few blocks take the exact path (about 1 % of 16-lane float blocks on N(-3, 3) logits), so
// the screen saves most of the exact sigmoid's cost (docs/performance.md, "screened Bernoulli").
// Internal to csrc/.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "fastgen.h"
#include "fastgen/math.h"
#include "fastgen/sampling.h"
#include "index_lists.h"
#include "philox_cpu.h"

#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define FASTGEN_SCREENED_BERNOULLI 1
#include <immintrin.h>

namespace fastgen {
namespace cpu {
namespace screened {

// Bound on |estimate - sigmoid(x)|, summed over its sources (float; double is smaller):
//  * exp2 on [-1/2, 1/2] by its Taylor polynomial of degree 4: remainder at most
//    (ln2 / 2)^5 / 5! * sqrt(2) = 5.9e-5, relative to 2^f >= 1/sqrt(2): 8.3e-5, which moves
//    sigmoid by at most a quarter of that (|d sigmoid / d log e| = p (1 - p) <= 1/4): 2.1e-5;
//  * rcp14: relative error below 2^-14 = 6.1e-5 of a value at most 1;
//  * roundings of |x| log2(e), the polynomial, 1 + e and the products: below 2e-6;
//  * the exact sigmoid's own error, a few ulp: below 1e-6.
// Total below 8.5e-5; the margin is 2^-12 = 2.4e-4.
constexpr double kScreenMargin = 1.0 / 4096;

template <typename T> struct Lanes;
template <> struct Lanes<float> {
  static constexpr int kLanes = 16;
  using V = __m512;
  using M = __mmask16;
  using Columns = __m512i;
  static V set1(float a) { return _mm512_set1_ps(a); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(M m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, M m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V abs(V a) { return _mm512_abs_ps(a); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scalef(V a, V n) { return _mm512_scalef_ps(a, n); }
  static V rcp(V a) { return _mm512_rcp14_ps(a); }
  static V blend(M m, V a, V b) { return _mm512_mask_blend_ps(m, a, b); }
  static V ones_where(M m) { return _mm512_maskz_mov_ps(m, _mm512_set1_ps(1.0f)); }
  static M less(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M greater_equal(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static M nonzero(V a) { return _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_NEQ_UQ); }
  // The uniforms of uniform01<float>: the top 24 bits of each word times 2^-24, exact.
  static V uniforms(M m, const uint32_t* w) {
    const __m512i bits = _mm512_srli_epi32(_mm512_maskz_loadu_epi32(m, w), 8);
    return _mm512_mul_ps(_mm512_cvtepi32_ps(bits), _mm512_set1_ps(5.9604644775390625e-08f));
  }
  static Columns first_columns(int64_t c) {
    return _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(c)),
                            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  }
  static Columns next_columns(Columns c) { return _mm512_add_epi32(c, _mm512_set1_epi32(16)); }
  // The register form of vpcompressd (see index_lists.h for why not the memory form) and a
  // store of the whole vector, or of the packed entries only in a partial block: a list never
  // holds more entries than the columns seen, so a full block's store stays inside its columns.
  static void append(int32_t* at, M m, Columns c, bool full) {
    const __m512i packed = _mm512_maskz_compress_epi32(m, c);
    if (full) {
      _mm512_storeu_si512(at, packed);
    } else {
      _mm512_mask_storeu_epi32(at, static_cast<__mmask16>((1u << __builtin_popcount(m)) - 1), packed);
    }
  }
};
template <> struct Lanes<double> {
  static constexpr int kLanes = 8;
  using V = __m512d;
  using M = __mmask8;
  using Columns = __m256i;
  static V set1(double a) { return _mm512_set1_pd(a); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V load(M m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(double* p, M m, V v) { _mm512_mask_storeu_pd(p, m, v); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V abs(V a) { return _mm512_abs_pd(a); }
  static V max(V a, V b) { return _mm512_max_pd(a, b); }
  static V round(V a) { return _mm512_roundscale_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scalef(V a, V n) { return _mm512_scalef_pd(a, n); }
  static V rcp(V a) { return _mm512_rcp14_pd(a); }
  static V blend(M m, V a, V b) { return _mm512_mask_blend_pd(m, a, b); }
  static V ones_where(M m) { return _mm512_maskz_mov_pd(m, _mm512_set1_pd(1.0)); }
  static M less(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
  static M greater_equal(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ); }
  static M nonzero(V a) { return _mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_NEQ_UQ); }
  // uniform01<double>: the word times 2^-32, exact.
  static V uniforms(M m, const uint32_t* w) {
    const __m256i words = _mm256_maskz_loadu_epi32(m, w);
    return _mm512_mul_pd(_mm512_cvtepu32_pd(words), _mm512_set1_pd(2.3283064365386963e-10));
  }
  static Columns first_columns(int64_t c) {
    return _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(c)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Columns next_columns(Columns c) { return _mm256_add_epi32(c, _mm256_set1_epi32(8)); }
  static void append(int32_t* at, M m, Columns c, bool full) {
    const __m256i packed = _mm256_maskz_compress_epi32(m, c);
    if (full) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(at), packed);
    } else {
      _mm256_mask_storeu_epi32(at, static_cast<__mmask8>((1u << __builtin_popcount(m)) - 1), packed);
    }
  }
};

// sigmoid(x) within kScreenMargin / 2 (see above): exp(-|x|) = 2^t, t = -|x| log2(e) kept
// above -126 (2^t normal; sigmoid is then below 1e-37 either way), 2^t = 2^n 2^f with n the
// nearest integer and |f| <= 1/2.
template <typename T> inline typename Lanes<T>::V sigmoid_estimate(typename Lanes<T>::V x) {
  using L = Lanes<T>;
  const typename L::V t = L::max(L::mul(L::abs(x), L::set1(T(-1.4426950408889634))), L::set1(T(-126)));
  const typename L::V n = L::round(t);
  const typename L::V f = L::sub(t, n);
  typename L::V q = L::set1(T(0.0096181291076284772));  // ln2^4 / 4!
  q = L::fma(q, f, L::set1(T(0.055504108664821580)));   // ln2^3 / 3!
  q = L::fma(q, f, L::set1(T(0.24022650695910071)));    // ln2^2 / 2!
  q = L::fma(q, f, L::set1(T(0.69314718055994531)));    // ln2
  q = L::fma(q, f, L::set1(T(1)));
  const typename L::V e = L::scalef(q, n);
  const typename L::V r = L::rcp(L::add(L::set1(T(1)), e));
  // A NaN logit gives about e^-87 here and NaN in the exact sigmoid: state 0 either way (u < p is
  // false). The ops refuse NaN input; a NaN made inside a loop shows in its probabilities.
  return L::blend(L::greater_equal(x, L::set1(T(0))), L::mul(e, r), r);
}

// The exact states of n <= kLanes elements, by the shared scalar code (vectorised by the
// compiler exactly as the generic loop is): the rare blocks near the boundary.
template <typename T, bool kBias>
[[gnu::noinline]] typename Lanes<T>::M exact_states(const T* x, const T* b, const uint32_t* w, int n) {
  alignas(64) T states[Lanes<T>::kLanes] = {};
#pragma omp simd
  for (int k = 0; k < n; ++k) states[k] = bernoulli_state(sigmoid(kBias ? x[k] + b[k] : x[k]), uniform01<T>(w[k]));
  return Lanes<T>::nonzero(Lanes<T>::load(states));
}

// What bernoulli_logits_range<T, kBias, false, true> computes (see bernoulli_row.h): states of
// columns [c0, c1) of a row starting at stream element row_start, with the index list and
// (c0 = 0 only) the bit mask when given; returns the number of ones.
template <typename T, bool kBias>
int32_t states_from_logits(const T* in, const T* bias, T* states, int64_t row_start, int64_t c0, int64_t c1,
                           RandomStream s, int32_t* indices, uint64_t* bits) {
  using L = Lanes<T>;
  constexpr int kLanes = L::kLanes;
  int32_t ones = 0;
  if (bits != nullptr) std::fill(bits, bits + mask_words_for(c1), uint64_t(0));
  const typename L::V margin = L::set1(T(kScreenMargin));
  for_each_word_chunk(s, row_start + c0, row_start + c1, [&](int64_t start, int64_t len, const uint32_t* w) {
    const int64_t first = start - row_start;
    const T* x = in + first;
    const T* b = kBias ? bias + first : nullptr;
    T* st = states + first;
    typename L::Columns columns = L::first_columns(first);
    // One block of lanes; kFull is known at compile time, so full blocks load and store
    // without masks.
    const auto block = [&](int64_t j, int n, auto full) {
      constexpr bool kFull = decltype(full)::value;
      const typename L::M live = kFull ? static_cast<typename L::M>(~0u) : static_cast<typename L::M>((1u << n) - 1);
      typename L::V v = kFull ? L::load(x + j) : L::load(live, x + j);
      if (kBias) v = L::add(v, kFull ? L::load(b + j) : L::load(live, b + j));
      const typename L::V u = L::uniforms(live, w + j);
      const typename L::V p = sigmoid_estimate<T>(v);
      const typename L::M on = L::less(u, L::sub(p, margin)) & live;
      const typename L::M off = L::greater_equal(u, L::add(p, margin)) & live;
      typename L::M state = on;
      if (__builtin_expect(static_cast<typename L::M>(on | off) != live, 0))
        state = exact_states<T, kBias>(x + j, kBias ? b + j : nullptr, w + j, n) & live;
      if (kFull) {
        L::store(st + j, L::ones_where(state));
      } else {
        L::store(st + j, live, L::ones_where(state));
      }
      if (indices != nullptr) {
        L::append(indices + ones, state, columns, kFull);
        ones += __builtin_popcount(static_cast<unsigned>(state));
        if (bits != nullptr) or_mask_bits(bits, first + j, static_cast<uint32_t>(state));
      }
      columns = L::next_columns(columns);
    };
    int64_t j = 0;
    for (; j + kLanes <= len; j += kLanes) block(j, kLanes, std::true_type{});
    if (j < len) block(j, static_cast<int>(len - j), std::false_type{});
  });
  return ones;
}

}  // namespace screened
}  // namespace cpu
}  // namespace fastgen
#endif

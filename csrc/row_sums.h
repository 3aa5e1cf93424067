// The register tiles the products with a binary or sparse operand are made of (binary.cpp, and
// the RBM loop over slices of hidden units in rbm_sliced.cpp): one output row's tile of up to
// kTileVectors vectors lives in registers while the selected rows of the other factor stream
// through it. GCC vector extensions, so the same code is AVX-512, AVX2 or SSE by the target.
// Internal to csrc/.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

namespace fastgen {
namespace cpu {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif
// Vectors per register tile: 8 accumulators leave room for the loads on every x86 target.
constexpr int kTileVectors = 8;
template <typename T> struct Simd {
  typedef T V __attribute__((vector_size(kVectorBytes)));
  static constexpr int kLanes = kVectorBytes / sizeof(T);
  static V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
  }
  static void store(T* p, V v) { std::memcpy(p, &v, sizeof(V)); }
  // acc + w * m with one rounding where the target fuses it (the build turns off contraction,
  // so the fused form has to be asked for). Every lane, the partial last one included, rounds
  // the same way, so a column's result does not depend on where a tile boundary falls.
  static V madd(V acc, T w, V m) {
#if defined(__AVX512F__)
    if constexpr (kVectorBytes == 64 && sizeof(T) == 4)
      return (V)_mm512_fmadd_ps(_mm512_set1_ps(w), (__m512)m, (__m512)acc);
    if constexpr (kVectorBytes == 64 && sizeof(T) == 8)
      return (V)_mm512_fmadd_pd(_mm512_set1_pd(w), (__m512d)m, (__m512d)acc);
#endif
#if defined(__FMA__)
    if constexpr (kVectorBytes == 32 && sizeof(T) == 4)
      return (V)_mm256_fmadd_ps(_mm256_set1_ps(w), (__m256)m, (__m256)acc);
    if constexpr (kVectorBytes == 32 && sizeof(T) == 8)
      return (V)_mm256_fmadd_pd(_mm256_set1_pd(w), (__m256d)m, (__m256d)acc);
#endif
    return acc + w * m;  // targets without FMA
  }
  // The first n < kLanes lanes of p (the rest zero), and their store: masked loads and stores
  // where the target has them, so a partial vector at the end of a row costs what a full one
  // does instead of a scalar loop.
  static V load_partial(const T* p, int n) {
#if defined(__AVX512F__)
    if constexpr (kVectorBytes == 64 && sizeof(T) == 4)
      return (V)_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
    if constexpr (kVectorBytes == 64 && sizeof(T) == 8)
      return (V)_mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << n) - 1), p);
#endif
    V v{};
    std::memcpy(&v, p, n * sizeof(T));
    return v;
  }
  static void store_partial(T* p, V v, int n) {
#if defined(__AVX512F__)
    if constexpr (kVectorBytes == 64 && sizeof(T) == 4)
      return _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), (__m512)v);
    if constexpr (kVectorBytes == 64 && sizeof(T) == 8)
      return _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1), (__m512d)v);
#endif
    std::memcpy(p, &v, n * sizeof(T));
  }
  // The first n <= kLanes lanes: a whole vector when n == kLanes, else the masked forms above.
  static V load_upto(const T* p, int n) { return n < kLanes ? load_partial(p, n) : load(p); }
  static void store_upto(T* p, V v, int n) { n < kLanes ? store_partial(p, v, n) : store(p, v); }
};

// out[0 : width] = init + sum_k (w[k] *) M[idx[k], col0 : col0 + width], width = kVecs lanes-wide
// vectors, the last of them holding only `tail` lanes when tail > 0 (masked loads and stores).
// kWeighted scales each selected row by its entry's value, else (a 0/1 operand) adds it as is.
template <typename T, int kVecs, bool kWeighted, bool kPartial>
inline void sum_rows_tile(const int32_t* idx, const T* w, int32_t n, const T* M, int64_t ldm, const T* init, T* out,
                          int tail) {
  using S = Simd<T>;
  constexpr int kFull = kPartial ? kVecs - 1 : kVecs;
  typename S::V acc[kVecs];
#pragma GCC unroll 8
  for (int t = 0; t < kFull; ++t) acc[t] = init ? S::load(init + t * S::kLanes) : typename S::V{};
  if constexpr (kPartial) acc[kFull] = init ? S::load_partial(init + kFull * S::kLanes, tail) : typename S::V{};
  for (int32_t k = 0; k < n; ++k) {
    const T* m = M + static_cast<int64_t>(idx[k]) * ldm;
    if constexpr (kWeighted) {
      const T wk = w[k];
#pragma GCC unroll 8
      for (int t = 0; t < kFull; ++t) acc[t] = S::madd(acc[t], wk, S::load(m + t * S::kLanes));
      if constexpr (kPartial) acc[kFull] = S::madd(acc[kFull], wk, S::load_partial(m + kFull * S::kLanes, tail));
    } else {
#pragma GCC unroll 8
      for (int t = 0; t < kFull; ++t) acc[t] += S::load(m + t * S::kLanes);
      if constexpr (kPartial) acc[kFull] += S::load_partial(m + kFull * S::kLanes, tail);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < kFull; ++t) S::store(out + t * S::kLanes, acc[t]);
  if constexpr (kPartial) S::store_partial(out + kFull * S::kLanes, acc[kFull], tail);
}

// Columns [col0, col0 + width) of one output row, width <= one tile.
template <typename T, bool kWeighted>
void sum_rows(const int32_t* idx, const T* w, int32_t n, const T* M, int64_t ldm, const T* init, T* out,
              int64_t width) {
  constexpr int64_t L = Simd<T>::kLanes;
  const int tail = static_cast<int>(width % L);
  if (tail == 0) {
    switch (width / L) {
      case 8: return sum_rows_tile<T, 8, kWeighted, false>(idx, w, n, M, ldm, init, out, 0);
      case 7: return sum_rows_tile<T, 7, kWeighted, false>(idx, w, n, M, ldm, init, out, 0);
      case 6: return sum_rows_tile<T, 6, kWeighted, false>(idx, w, n, M, ldm, init, out, 0);
      case 5: return sum_rows_tile<T, 5, kWeighted, false>(idx, w, n, M, ldm, init, out, 0);
      case 4: return sum_rows_tile<T, 4, kWeighted, false>(idx, w, n, M, ldm, init, out, 0);
      case 3: return sum_rows_tile<T, 3, kWeighted, false>(idx, w, n, M, ldm, init, out, 0);
      case 2: return sum_rows_tile<T, 2, kWeighted, false>(idx, w, n, M, ldm, init, out, 0);
      default: return sum_rows_tile<T, 1, kWeighted, false>(idx, w, n, M, ldm, init, out, 0);
    }
  }
  switch (width / L + 1) {
    case 8: return sum_rows_tile<T, 8, kWeighted, true>(idx, w, n, M, ldm, init, out, tail);
    case 7: return sum_rows_tile<T, 7, kWeighted, true>(idx, w, n, M, ldm, init, out, tail);
    case 6: return sum_rows_tile<T, 6, kWeighted, true>(idx, w, n, M, ldm, init, out, tail);
    case 5: return sum_rows_tile<T, 5, kWeighted, true>(idx, w, n, M, ldm, init, out, tail);
    case 4: return sum_rows_tile<T, 4, kWeighted, true>(idx, w, n, M, ldm, init, out, tail);
    case 3: return sum_rows_tile<T, 3, kWeighted, true>(idx, w, n, M, ldm, init, out, tail);
    case 2: return sum_rows_tile<T, 2, kWeighted, true>(idx, w, n, M, ldm, init, out, tail);
    default: return sum_rows_tile<T, 1, kWeighted, true>(idx, w, n, M, ldm, init, out, tail);
  }
}

}  // namespace cpu
}  // namespace fastgen

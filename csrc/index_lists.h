// The column of every nonzero of a row, appended to an index list: what the Bernoulli sampler
// writes while it draws and what binary_rows_from_dense writes for given 0/1 data. Internal to
// csrc/.
//
// With AVX-512 a block of 16 (float) or 8 (double) values becomes a mask, and the register form
// of vpcompressd packs the block's column numbers into a full vector store; the memory form
// (compress-store) is microcoded and slow on AMD Zen 4, and the scalar loop it replaces carries
// the count from one element to the next (the single largest cost of drawing the hidden states
// of scikit-learn's digits RBM).
#pragma once
#include <algorithm>
#include <climits>
#include <cstdint>

#if defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>
#endif

namespace fastgen {
namespace cpu {

// bits |= piece << at, for a piece of at most 32 bits that may straddle two words. The next word
// is touched only when set bits spill into it: a row's last piece would otherwise or zero into
// the word after the row's mask, which is the next row's (another thread's) or past the end.
inline void or_mask_bits(uint64_t* bits, int64_t at, uint32_t piece) {
  const int64_t word = at >> 6, shift = at & 63;
  bits[word] |= static_cast<uint64_t>(piece) << shift;
  if (shift > 32) {
    const uint64_t spill = static_cast<uint64_t>(piece) >> (64 - shift);
    if (spill != 0) bits[word + 1] |= spill;
  }
}

// Appends c0 + j for every j < len with x[j] != 0 to indices (which holds n entries so far) and
// returns the new count (and, with bits, sets bit c0 + j of the row's mask words for each of
// them); with kCheckBinary, also clears *binary if any x[j] is neither 0 nor 1
// (checked in the same pass). Writes only indices[n, n + len) (a full block's vector store ends at
// most at its last column, since a list never holds more entries than the columns seen), so
// rows of one list array can be filled by different threads.
template <bool kCheckBinary = false, typename T>
inline int32_t append_nonzero_columns(const T* x, int64_t len, int64_t c0, int32_t* indices, int32_t n,
                                      bool* binary = nullptr, uint64_t* bits = nullptr) {
  int64_t j = 0;
  bool ok = true;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  if constexpr (sizeof(T) == 4) {
    const __m512i step = _mm512_set1_epi32(16);
    __m512i columns = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(c0)),
                                       _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __mmask16 not_binary = 0;
    for (; j + 16 <= len; j += 16) {
      const __m512 v = _mm512_loadu_ps(x + j);
      const __mmask16 nonzero = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
      if constexpr (kCheckBinary) not_binary |= _mm512_mask_cmp_ps_mask(nonzero, v, _mm512_set1_ps(1.0f), _CMP_NEQ_UQ);
      _mm512_storeu_si512(indices + n, _mm512_maskz_compress_epi32(nonzero, columns));
      if (bits != nullptr) or_mask_bits(bits, c0 + j, nonzero);
      n += __builtin_popcount(nonzero);
      columns = _mm512_add_epi32(columns, step);
    }
    ok = not_binary == 0;
  } else {
    const __m256i step = _mm256_set1_epi32(8);
    __m256i columns = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(c0)),
                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __mmask8 not_binary = 0;
    for (; j + 8 <= len; j += 8) {
      const __m512d v = _mm512_loadu_pd(x + j);
      const __mmask8 nonzero = _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_NEQ_UQ);
      if constexpr (kCheckBinary) not_binary |= _mm512_mask_cmp_pd_mask(nonzero, v, _mm512_set1_pd(1.0), _CMP_NEQ_UQ);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(indices + n), _mm256_maskz_compress_epi32(nonzero, columns));
      if (bits != nullptr) or_mask_bits(bits, c0 + j, nonzero);
      n += __builtin_popcount(nonzero);
      columns = _mm256_add_epi32(columns, step);
    }
    ok = not_binary == 0;
  }
#endif
  for (; j < len; ++j) {
    indices[n] = static_cast<int32_t>(c0 + j);
    if constexpr (kCheckBinary) ok = ok && (x[j] == T(0) || x[j] == T(1));
    if (bits != nullptr && x[j] != T(0)) or_mask_bits(bits, c0 + j, 1u);
    n += x[j] != T(0);
  }
  if constexpr (kCheckBinary) *binary = ok;
  return n;
}

// The bit mask of an ascending index list: bit i of bits[i / 64] set for every listed i, n_words
// words written. Each word is built in a register (the indices ascend); or-ing every index into
// its word in memory instead chains each update through a store and a reload.
inline void index_list_mask(const int32_t* idx, int32_t n, int64_t n_words, uint64_t* bits) {
  int64_t w = 0;
  uint64_t word = 0;
  for (int32_t k = 0; k < n; ++k) {
    const int64_t at = idx[k] >> 6;
    while (w < at) {
      bits[w++] = word;
      word = 0;
    }
    word |= uint64_t(1) << (idx[k] & 63);
  }
  while (w < n_words) {
    bits[w++] = word;
    word = 0;
  }
}

// Where an ascending index list crosses into each chunk of `chunk` columns: the entries of chunk
// j are idx[bounds[j], bounds[j + 1]), j < n_chunks (bounds has n_chunks + 1 entries). With
// AVX-512 the entries below a chunk's end are counted sixteen at a time (sorted, so they are a
// prefix of every block); the scalar loop it replaces spent about one mispredicted branch per
// chunk and two cycles per entry, half of binary_matmul's bookkeeping in the MNIST RBM loop.
inline void chunk_bounds(const int32_t* idx, int32_t n, int64_t chunk, int64_t n_chunks, int32_t* bounds) {
  bounds[0] = 0;
  int32_t pos = 0;
  for (int64_t j = 1; j < n_chunks; ++j) {
    const int64_t limit = j * chunk;
#if defined(__AVX512F__)
    const __m512i lim = _mm512_set1_epi32(static_cast<int32_t>(std::min<int64_t>(limit, INT32_MAX)));
    while (pos + 16 <= n) {
      const __mmask16 below = _mm512_cmplt_epi32_mask(_mm512_loadu_si512(idx + pos), lim);
      pos += __builtin_popcount(below);
      if (below != 0xFFFF) break;
    }
#endif
    while (pos < n && idx[pos] < limit) ++pos;
    bounds[j] = pos;
  }
  bounds[n_chunks] = n;
}

}  // namespace cpu
}  // namespace fastgen

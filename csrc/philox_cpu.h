// CPU helpers over the shared Philox definition: fill a small buffer with the words (or
// normals) of a flat element range, so that the loops consuming them stay vectorisable.
#pragma once
#include <algorithm>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "fastgen.h"
#include "fastgen/philox.h"
#include "fastgen/sampling.h"

namespace fastgen {
namespace cpu {

// Elements handled per buffer fill; a multiple of 4 (one Philox block is 4 elements).
constexpr int64_t kChunk = 1024;

// words[k] = word of element (first_block * 4 + k), k < 4 * n_blocks, n_blocks <= kChunk / 4 + 1.
// Same arithmetic as philox4x32_10() in the shared header, laid out structure-of-arrays (one
// round over all blocks at a time) so that the compiler vectorises the 32x32->64 products.
// The known-answer and CPU-vs-header tests pin the two to each other.
#if defined(__AVX512F__)
namespace philox_detail {
// High and low 32 bits of x * m for 16 lanes: vpmuludq multiplies the even lanes, so the odd
// lanes go through a second product after a shift, and the halves are blended back.
inline void mulhilo16(__m512i x, __m512i m, __m512i& hi, __m512i& lo) {
  const __m512i even = _mm512_mul_epu32(x, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), m);
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

// The words of blocks first_block ... first_block + 16 * kGroups - 1, in element order (4 per
// block). Groups of 16 blocks are lanes of one register each; two groups interleaved keep the
// multipliers busy through the latency of each round.
template <int kGroups> inline void philox_words16(RandomStream s, uint64_t first_block, uint32_t* words) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i x0[kGroups], x1[kGroups], x2[kGroups], x3[kGroups];
  for (int g = 0; g < kGroups; ++g) {
    const uint64_t block = first_block + 16 * g;
    const __m512i lo_block = _mm512_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(block)));
    x0[g] = _mm512_add_epi32(lo_block, iota);
    // Lanes whose low word wrapped around carry into the high word.
    const __mmask16 carry = _mm512_cmplt_epu32_mask(x0[g], lo_block);
    const __m512i hi_block = _mm512_set1_epi32(static_cast<int32_t>(block >> 32));
    x1[g] = _mm512_mask_add_epi32(hi_block, carry, hi_block, _mm512_set1_epi32(1));
    x2[g] = _mm512_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(s.offset)));
    x3[g] = _mm512_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(s.offset >> 32)));
  }
  const __m512i m0 = _mm512_set1_epi64(kPhiloxM0), m1 = _mm512_set1_epi64(kPhiloxM1);
  uint32_t k0 = static_cast<uint32_t>(s.seed), k1 = static_cast<uint32_t>(s.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round > 0) { k0 += kPhiloxW0; k1 += kPhiloxW1; }
    const __m512i key0 = _mm512_set1_epi32(static_cast<int32_t>(k0)), key1 = _mm512_set1_epi32(static_cast<int32_t>(k1));
    for (int g = 0; g < kGroups; ++g) {
      __m512i hi0, lo0, hi1, lo1;
      mulhilo16(x0[g], m0, hi0, lo0);
      mulhilo16(x2[g], m1, hi1, lo1);
      x0[g] = _mm512_ternarylogic_epi32(hi1, x1[g], key0, 0x96);  // three-way xor
      x2[g] = _mm512_ternarylogic_epi32(hi0, x3[g], key1, 0x96);
      x1[g] = lo1;
      x3[g] = lo0;
    }
  }
  // Blocks are lanes; the words go out block after block: a 4 x 16 transpose, first within
  // each 128-bit lane (unpacks), then of the 128-bit lanes (shuffles).
  for (int g = 0; g < kGroups; ++g) {
    const __m512i t0 = _mm512_unpacklo_epi32(x0[g], x1[g]), t1 = _mm512_unpackhi_epi32(x0[g], x1[g]);
    const __m512i t2 = _mm512_unpacklo_epi32(x2[g], x3[g]), t3 = _mm512_unpackhi_epi32(x2[g], x3[g]);
    const __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
    const __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
    const __m512i v0 = _mm512_shuffle_i32x4(u0, u1, 0x44), v1 = _mm512_shuffle_i32x4(u2, u3, 0x44);
    const __m512i v2 = _mm512_shuffle_i32x4(u0, u1, 0xEE), v3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
    uint32_t* out = words + 64 * g;
    _mm512_storeu_si512(out, _mm512_shuffle_i32x4(v0, v1, 0x88));
    _mm512_storeu_si512(out + 16, _mm512_shuffle_i32x4(v0, v1, 0xDD));
    _mm512_storeu_si512(out + 32, _mm512_shuffle_i32x4(v2, v3, 0x88));
    _mm512_storeu_si512(out + 48, _mm512_shuffle_i32x4(v2, v3, 0xDD));
  }
}
}  // namespace philox_detail
#endif

inline void philox_words(RandomStream s, uint64_t first_block, int64_t n_blocks, uint32_t* words) {
#if defined(__AVX512F__)
  // Sixteen blocks at a time in registers: 0.55-0.60 ns a word against 0.97 for the loops below
  // (one thread, 1,024-word chunks), which the compiler vectorises with a load and store of every
  // state word in every round.
  for (; n_blocks >= 32; n_blocks -= 32, first_block += 32, words += 128)
    philox_detail::philox_words16<2>(s, first_block, words);
  for (; n_blocks >= 16; n_blocks -= 16, first_block += 16, words += 64)
    philox_detail::philox_words16<1>(s, first_block, words);
  if (n_blocks == 0) return;
  if (n_blocks > 4) {
    alignas(64) uint32_t tail[64];
    philox_detail::philox_words16<1>(s, first_block, tail);
    std::copy(tail, tail + 4 * n_blocks, words);
    return;
  }
#endif
  constexpr int64_t kMaxBlocks = kChunk / 4 + 1;
  alignas(64) uint32_t x0[kMaxBlocks], x1[kMaxBlocks], x2[kMaxBlocks], x3[kMaxBlocks];
  const uint32_t o0 = static_cast<uint32_t>(s.offset), o1 = static_cast<uint32_t>(s.offset >> 32);
#pragma omp simd
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint64_t block = first_block + static_cast<uint64_t>(b);
    x0[b] = static_cast<uint32_t>(block);
    x1[b] = static_cast<uint32_t>(block >> 32);
    x2[b] = o0;
    x3[b] = o1;
  }
  uint32_t k0 = static_cast<uint32_t>(s.seed), k1 = static_cast<uint32_t>(s.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round > 0) { k0 += kPhiloxW0; k1 += kPhiloxW1; }
#pragma omp simd
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * x0[b];
      const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * x2[b];
      const uint32_t y0 = static_cast<uint32_t>(p1 >> 32) ^ x1[b] ^ k0;
      const uint32_t y2 = static_cast<uint32_t>(p0 >> 32) ^ x3[b] ^ k1;
      x1[b] = static_cast<uint32_t>(p1);
      x3[b] = static_cast<uint32_t>(p0);
      x0[b] = y0;
      x2[b] = y2;
    }
  }
#pragma omp simd
  for (int64_t b = 0; b < n_blocks; ++b) {
    words[4 * b + 0] = x0[b];
    words[4 * b + 1] = x1[b];
    words[4 * b + 2] = x2[b];
    words[4 * b + 3] = x3[b];
  }
}

// Visits the flat element range [begin, end) in chunks: fn(chunk_begin, chunk_len, words) where
// words[j] is the Philox word of element chunk_begin + j.
template <typename Fn>
inline void for_each_word_chunk(RandomStream s, int64_t begin, int64_t end, Fn&& fn) {
  alignas(64) uint32_t words[kChunk + 4];
  for (int64_t start = begin; start < end;) {
    const int64_t first_block = start >> 2;
    const int64_t skip = start - (first_block << 2);
    const int64_t len = std::min<int64_t>(end - start, kChunk - skip);
    const int64_t n_blocks = (skip + len + 3) >> 2;
    philox_words(s, static_cast<uint64_t>(first_block), n_blocks, words);
    fn(start, len, words + skip);
    start += len;
  }
}

// normals[j] = standard normal of element (first_block * 4 + j) for j < 4 * n_blocks.
template <typename T>
inline void philox_normals(RandomStream s, uint64_t first_block, int64_t n_blocks, uint32_t* words, T* normals) {
  philox_words(s, first_block, n_blocks, words);
#pragma omp simd
  for (int64_t pair = 0; pair < 2 * n_blocks; ++pair) {
    T n0, n1;
    box_muller(words[2 * pair], words[2 * pair + 1], n0, n1);
    normals[2 * pair] = n0;
    normals[2 * pair + 1] = n1;
  }
}

template <typename T, typename Fn>
inline void for_each_normal_chunk(RandomStream s, int64_t begin, int64_t end, Fn&& fn) {
  alignas(64) uint32_t words[kChunk + 4];
  alignas(64) T normals[kChunk + 4];
  for (int64_t start = begin; start < end;) {
    const int64_t first_block = start >> 2;
    const int64_t skip = start - (first_block << 2);
    const int64_t len = std::min<int64_t>(end - start, kChunk - skip);
    const int64_t n_blocks = (skip + len + 3) >> 2;
    philox_normals(s, static_cast<uint64_t>(first_block), n_blocks, words, normals);
    fn(start, len, normals + skip);
    start += len;
  }
}

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMinElements = 1 << 15;

}  // namespace cpu
}  // namespace fastgen

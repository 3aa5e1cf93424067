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
// The words of blocks first_block ... first_block + 8 * kGroups - 1, in element order (4 per
// block). One block per 64-bit lane: vpmuludq multiplies the low halves of the lanes, so each
// state word lives in a low half and the high halves carry bits that no product reads (x0 and
// x2 go only into products; x1 and x3 take a whole product and reach x0 and x2 through a xor,
// high half included). The counter's two words are then one 64-bit add, carry included.
// Against 16 blocks a register (products of even and odd lanes blended back): 0.42 ns a word
// against 0.56-0.59 (one thread), bitwise the same. Four groups keep the multipliers busy
// through the latency of each round.
template <int kGroups> inline void philox_words8(RandomStream s, uint64_t first_block, uint32_t* words) {
  const __m512i iota = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  __m512i x0[kGroups], x1[kGroups], x2[kGroups], x3[kGroups];
  for (int g = 0; g < kGroups; ++g) {
    x0[g] = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(first_block + 8 * g)), iota);
    x1[g] = _mm512_srli_epi64(x0[g], 32);
    x2[g] = _mm512_set1_epi64(static_cast<long long>(static_cast<uint32_t>(s.offset)));
    x3[g] = _mm512_set1_epi64(static_cast<long long>(s.offset >> 32));
  }
  const __m512i m0 = _mm512_set1_epi64(kPhiloxM0), m1 = _mm512_set1_epi64(kPhiloxM1);
  uint32_t k0 = static_cast<uint32_t>(s.seed), k1 = static_cast<uint32_t>(s.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round > 0) { k0 += kPhiloxW0; k1 += kPhiloxW1; }
    const __m512i key0 = _mm512_set1_epi64(k0), key1 = _mm512_set1_epi64(k1);
    for (int g = 0; g < kGroups; ++g) {
      const __m512i p0 = _mm512_mul_epu32(x0[g], m0), p1 = _mm512_mul_epu32(x2[g], m1);
      x0[g] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), x1[g], key0, 0x96);  // three-way xor
      x2[g] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), x3[g], key1, 0x96);
      x1[g] = p1;
      x3[g] = p0;
    }
  }
  // Words (0, 1) and (2, 3) of each block as two 64-bit lanes, interleaved block after block.
  const __m512i first_half = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
  const __m512i second_half = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
  for (int g = 0; g < kGroups; ++g) {
    const __m512i w01 = _mm512_mask_blend_epi32(0xAAAA, x0[g], _mm512_slli_epi64(x1[g], 32));
    const __m512i w23 = _mm512_mask_blend_epi32(0xAAAA, x2[g], _mm512_slli_epi64(x3[g], 32));
    _mm512_storeu_si512(words + 32 * g, _mm512_permutex2var_epi64(w01, first_half, w23));
    _mm512_storeu_si512(words + 32 * g + 16, _mm512_permutex2var_epi64(w01, second_half, w23));
  }
}
}  // namespace philox_detail
#endif

inline void philox_words(RandomStream s, uint64_t first_block, int64_t n_blocks, uint32_t* words) {
#if defined(__AVX512F__)
  for (; n_blocks >= 32; n_blocks -= 32, first_block += 32, words += 128)
    philox_detail::philox_words8<4>(s, first_block, words);
  for (; n_blocks >= 8; n_blocks -= 8, first_block += 8, words += 32)
    philox_detail::philox_words8<1>(s, first_block, words);
  if (n_blocks == 0) return;
  // The last few blocks of a row: a whole register's worth, of which only these are kept,
  // costs less than a pass of the loops below over them (0.97 ns a word).
  alignas(64) uint32_t tail[32];
  philox_detail::philox_words8<1>(s, first_block, tail);
  std::copy(tail, tail + 4 * n_blocks, words);
#else
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
#endif
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

// CPU helpers over the shared Philox definition: fill a small buffer with the words (or
// normals) of a flat element range, so that the loops consuming them stay vectorisable.
#pragma once
#include <cstdint>

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
inline void philox_words(RandomStream s, uint64_t first_block, int64_t n_blocks, uint32_t* words) {
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

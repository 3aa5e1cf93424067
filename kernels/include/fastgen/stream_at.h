// One element of the stream at a time: the draw of element `index` of the call (seed, offset),
// for code that visits elements in its own order (numba loops, custom samplers). Each function
// returns exactly what the array kernels write at that index, because it is built from the same
// pieces: element i reads word (i % 4) of Philox block (i / 4) (philox.h), and normal i is
// member (i % 2) of the Box-Muller pair made from words (i & ~1) and (i | 1) of its block
// (normals_from_block, sampling.h).
#pragma once
#include "categorical.h"
#include "common.h"
#include "math.h"
#include "philox.h"
#include "sampling.h"

namespace fastgen {

FG_HD uint32_t bits_at(uint64_t seed, uint64_t offset, uint64_t index) {
  return philox_block(seed, offset, index >> 2).v[index & 3];
}

template <typename T> FG_HD T uniform_at(uint64_t seed, uint64_t offset, uint64_t index) {
  return uniform01<T>(bits_at(seed, offset, index));
}

template <typename T> FG_HD T normal_at(uint64_t seed, uint64_t offset, uint64_t index) {
  const Philox4 r = philox_block(seed, offset, index >> 2);
  const unsigned first = static_cast<unsigned>(index & 2);  // the pair's first word
  T n0, n1;
  box_muller(r.v[first], r.v[first + 1], n0, n1);
  return (index & 1) ? n1 : n0;
}

// sample_bernoulli: from probabilities, or from logits through the stable sigmoid.
template <typename T> FG_HD T bernoulli_at(T p, uint64_t seed, uint64_t offset, uint64_t index) {
  return bernoulli_state(p, uniform_at<T>(seed, offset, index));
}

template <typename T> FG_HD T bernoulli_logit_at(T x, uint64_t seed, uint64_t offset, uint64_t index) {
  return bernoulli_state(sigmoid(x), uniform_at<T>(seed, offset, index));
}

// sample_gaussian: mean + stddev * normal.
template <typename T> FG_HD T gaussian_at(T mean, T stddev, uint64_t seed, uint64_t offset, uint64_t index) {
  return gaussian_sample(mean, stddev, normal_at<T>(seed, offset, index));
}

// sample_categorical without top-k: the Gumbel-max draw of row `row` of a [rows, cols] logits
// array whose row starts at `logits` (element (row, c) has index row * cols + c).
template <typename T>
FG_HD int64_t categorical_at(const T* logits, int64_t cols, T temperature, uint64_t seed, uint64_t offset, uint64_t row) {
  const uint64_t first = row * static_cast<uint64_t>(cols);
  int64_t best = -1;
  T best_key = T(0);
  uint64_t block = ~uint64_t(0);
  Philox4 words{};
  for (int64_t c = 0; c < cols; ++c) {
    const uint64_t index = first + static_cast<uint64_t>(c);
    if ((index >> 2) != block) {  // one Philox block serves four columns
      block = index >> 2;
      words = philox_block(seed, offset, block);
    }
    const T key = gumbel_key(logits[c], temperature, uniform_open01<T>(words.v[index & 3]));
    if (best < 0 || key > best_key) {
      best = c;
      best_key = key;
    }
  }
  return best;
}

}  // namespace fastgen

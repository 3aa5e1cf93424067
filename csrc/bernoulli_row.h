// One row of the fused bias + sigmoid + Bernoulli draw, over a range of its columns: what
// sample_bernoulli runs for every row (sampling.cpp), and what each thread of the RBM loop over
// slices of hidden units runs for its own slice (rbm_sliced.cpp). Internal to csrc/.
#pragma once
#include <algorithm>
#include <cstdint>

#include "bernoulli_screened.h"
#include "fastgen.h"
#include "fastgen/math.h"
#include "fastgen/sampling.h"
#include "index_lists.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {

// Columns [c0, c1) of a row whose column 0 is element `row_start` of the stream (r * cols for
// row r of a [rows, cols] draw, so a slice draws exactly what the whole row would there):
// probs[c] = sigmoid(in[c] (+ bias[c])) and/or states[c] ~ Bernoulli(probs[c]). With indices,
// the columns of the ones are appended to the list (global column numbers, ascending) and their
// number returned; with bits (whole rows only: c0 = 0), also set in the row's mask words,
// which are cleared first. The flags are
// template parameters so that each variant's inner loop has no conditional loads and vectorises.
// Never inlined: compiled on its own, sigmoid and exp inline into its loops, which vectorise.
// Inlined into the large loop of rbm_sliced.cpp, GCC ran out of inlining budget there and left
// a scalar call per element (the sigmoid pass became the largest cost of the digits epoch).
template <typename T, bool kBias, bool kProbs, bool kStates>
[[gnu::noinline]] int32_t bernoulli_logits_range(const T* in, const T* bias, T* probs, T* states, int64_t row_start, int64_t c0,
                                      int64_t c1, RandomStream s, int32_t* indices = nullptr,
                                      uint64_t* bits = nullptr) {
  if (!kStates) {
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) probs[c] = sigmoid(kBias ? in[c] + bias[c] : in[c]);
    return 0;
  }
#if defined(FASTGEN_SCREENED_BERNOULLI)
  // States without probabilities: the exact sigmoid only where an estimate cannot decide.
  if constexpr (kStates && !kProbs)
    return screened::states_from_logits<T, kBias>(in, bias, states, row_start, c0, c1, s, indices, bits);
#endif
  int32_t ones = 0;
  if (bits != nullptr) std::fill(bits, bits + mask_words_for(c1), uint64_t(0));
  for_each_word_chunk(s, row_start + c0, row_start + c1, [&](int64_t start, int64_t len, const uint32_t* w) {
    const int64_t first = start - row_start;
    const T* x = in + first;
    const T* b = kBias ? bias + first : nullptr;
    T* pr = kProbs ? probs + first : nullptr;
    T* st = states + first;
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      const T p = sigmoid(kBias ? x[j] + b[j] : x[j]);
      if (kProbs) pr[j] = p;
      st[j] = bernoulli_state(p, uniform01<T>(w[j]));
    }
    // Still in L1: the index lists cost no second pass over memory.
    if (indices != nullptr) ones = append_nonzero_columns(st, len, first, indices, ones, nullptr, bits);
  });
  return ones;
}

}  // namespace cpu
}  // namespace fastgen

// Uniform, normal, Bernoulli and Gaussian sampling on the CPU. Every element's draw depends
// only on (seed, offset, flat index), so the OpenMP split cannot change a single bit.
#include <algorithm>

#include "bernoulli_row.h"
#include "fastgen.h"
#include "fastgen/math.h"
#include "index_lists.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {

void fill_bits(uint32_t* out, int64_t n, RandomStream stream) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    for_each_word_chunk(stream, c0, std::min(n, c0 + kChunk), [&](int64_t start, int64_t len, const uint32_t* w) {
      std::copy(w, w + len, out + start);
    });
  }
}

template <typename T> void fill_uniform(T* out, int64_t n, RandomStream stream) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    for_each_word_chunk(stream, c0, std::min(n, c0 + kChunk), [&](int64_t start, int64_t len, const uint32_t* w) {
      T* o = out + start;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) o[j] = uniform01<T>(w[j]);
    });
  }
}

template <typename T> void fill_normal(T* out, int64_t n, RandomStream stream) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements)
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    for_each_normal_chunk<T>(stream, c0, std::min(n, c0 + kChunk), [&](int64_t start, int64_t len, const T* z) {
      std::copy(z, z + len, out + start);
    });
  }
}

namespace {

template <typename T, bool kBias, bool kProbs, bool kStates>
void bernoulli_logits_row(const T* in, const T* bias, T* probs, T* states, int64_t r, int64_t cols, RandomStream s,
                          int32_t* indices, int32_t* count, uint64_t* bits) {
  // r is the row's stream row (first_row + its place in the call)
  const int32_t ones = bernoulli_logits_range<T, kBias, kProbs, kStates>(in, bias, probs, states, r * cols, 0, cols, s,
                                                                         indices, bits);
  if (count != nullptr) *count = ones;
}

template <typename T, bool kBias, bool kProbs, bool kStates>
void bernoulli_logits_rows(const BernoulliParams<T>& p) {
#pragma omp parallel for schedule(static) if (p.rows * p.cols >= kParallelMinElements)
  for (int64_t r = 0; r < p.rows; ++r) {
    bernoulli_logits_row<T, kBias, kProbs, kStates>(p.input + r * p.input_stride, p.bias,
                                                    kProbs ? p.probs + r * p.probs_stride : nullptr,
                                                    kStates ? p.states + r * p.states_stride : nullptr,
                                                    p.first_row + r, p.cols,
                                                    p.stream, p.indices ? p.indices + r * p.indices_stride : nullptr,
                                                    p.indices ? p.counts + r : nullptr,
                                                    p.indices && p.masks ? p.masks + r * mask_words_for(p.cols) : nullptr);
  }
}

template <typename T> void bernoulli_probs_rows(const BernoulliParams<T>& p) {
  const int64_t cols = p.cols;
#pragma omp parallel for schedule(static) if (p.rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* in = p.input + r * p.input_stride;
    T* states = p.states + r * p.states_stride;
    int32_t* indices = p.indices ? p.indices + r * p.indices_stride : nullptr;
    uint64_t* bits = p.masks && indices ? p.masks + r * mask_words_for(cols) : nullptr;
    if (bits != nullptr) std::fill(bits, bits + mask_words_for(cols), uint64_t(0));
    int32_t ones = 0;
    const int64_t base = (p.first_row + r) * cols;
    for_each_word_chunk(p.stream, base, base + cols, [&](int64_t start, int64_t len, const uint32_t* w) {
      const int64_t c0 = start - base;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) states[c0 + j] = bernoulli_state(in[c0 + j], uniform01<T>(w[j]));
      if (indices != nullptr) ones = append_nonzero_columns(states + c0, len, c0, indices, ones, nullptr, bits);
    });
    if (indices != nullptr) p.counts[r] = ones;
  }
}

}  // namespace

template <typename T> void sample_bernoulli(const BernoulliParams<T>& p) {
  if (p.rows == 0 || p.cols == 0) return;
  if (!p.from_logits) return bernoulli_probs_rows(p);
  const bool bias = p.bias != nullptr, probs = p.probs != nullptr, states = p.states != nullptr;
  if (!states) return bias ? bernoulli_logits_rows<T, true, true, false>(p) : bernoulli_logits_rows<T, false, true, false>(p);
  if (bias) return probs ? bernoulli_logits_rows<T, true, true, true>(p) : bernoulli_logits_rows<T, true, false, true>(p);
  return probs ? bernoulli_logits_rows<T, false, true, true>(p) : bernoulli_logits_rows<T, false, false, true>(p);
}

template <typename T> void sample_gaussian(const GaussianParams<T>& p) {
  if (p.rows == 0 || p.cols == 0) return;
  const int64_t cols = p.cols;
#pragma omp parallel for schedule(static) if (p.rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* mean = p.mean + r * p.mean_stride;
    T* out = p.out + r * p.out_stride;
    const int64_t base = (p.first_row + r) * cols;
    for_each_normal_chunk<T>(p.stream, base, base + cols, [&](int64_t start, int64_t len, const T* z) {
      const int64_t c0 = start - base;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        const int64_t c = c0 + j;
        const T m = mean[c] + (p.bias ? p.bias[c] : T(0));
        const T sd = p.stddev ? p.stddev[c] : p.stddev_scalar;
        out[c] = gaussian_sample(m, sd, z[j]);
      }
    });
  }
}

#define FASTGEN_INSTANTIATE(T)                                        \
  template void fill_uniform<T>(T*, int64_t, RandomStream);           \
  template void fill_normal<T>(T*, int64_t, RandomStream);            \
  template void sample_bernoulli<T>(const BernoulliParams<T>&);       \
  template void sample_gaussian<T>(const GaussianParams<T>&);
FASTGEN_INSTANTIATE(float)
FASTGEN_INSTANTIATE(double)
#undef FASTGEN_INSTANTIATE

}  // namespace cpu
}  // namespace fastgen

// Small pieces shared by the RBM loops of rbm.cpp (BLAS products) and rbm_binary.cpp (binary
// products). Internal to csrc/.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "fastgen.h"

namespace fastgen {
namespace cpu {
namespace rbm_detail {

inline RandomStream at(RandomStream s, uint64_t extra) { return RandomStream{s.seed, s.offset + extra}; }

// out[c] = a_scale * sum_r A[r, c] + b_scale * sum_r B[r, c]   (row strides lda, ldb)
template <typename T>
void column_sums(T* out, const T* A, int64_t a_rows, int64_t lda, T a_scale, const T* B, int64_t b_rows, int64_t ldb,
                 T b_scale, int64_t cols) {
  std::vector<T> acc(cols, T(0));
  for (int64_t r = 0; r < a_rows; ++r) {
    const T* a = A + r * lda;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) acc[c] += a[c];
  }
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) out[c] = a_scale * acc[c];
  std::fill(acc.begin(), acc.end(), T(0));
  for (int64_t r = 0; r < b_rows; ++r) {
    const T* b = B + r * ldb;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) acc[c] += b[c];
  }
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) out[c] += b_scale * acc[c];
}

template <typename T> void scale(T* x, int64_t n, T factor) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

}  // namespace rbm_detail
}  // namespace cpu
}  // namespace fastgen

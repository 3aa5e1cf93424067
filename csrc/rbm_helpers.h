// Small pieces shared by the RBM loops of rbm.cpp (BLAS products), rbm_binary.cpp (binary
// products) and ais.cpp. Internal to csrc/.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "aligned.h"
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

constexpr bool is_double(float) { return false; }
constexpr bool is_double(double) { return true; }

using rbm_detail::at;
using rbm_detail::column_sums;
using rbm_detail::scale;

// A [rows, K] 0/1 matrix both ways: dense (for BLAS) and as index lists (nnz < 0: not binary,
// the lists are unusable).
template <typename T> struct BinaryOperand {
  const T* dense;
  int64_t ld;
  const int32_t* indices;
  const int32_t* counts;
  int64_t stride;
  int64_t nnz;
  int64_t rows, K;
  const uint64_t* masks = nullptr;  // the rows as bit masks (mask_words_for(K) words each), or nullptr
  BinaryRows lists() const { return BinaryRows{indices, counts, nullptr, stride, rows, K, masks}; }
};

// out[rows, N] = a @ M (M: [K, N], row stride ldm); binary when it pays, BLAS otherwise.
template <typename T> void product(const BinaryOperand<T>& a, const T* M, int64_t ldm, int64_t N, T* out, int64_t ldo) {
  if (a.nnz >= 0 && binary_product_pays(a.rows, a.K, N, a.nnz, is_double(T()))) {
    binary_matmul<T>(a.lists(), M, ldm, N, nullptr, out, ldo);
  } else {
    gemm<T>(false, false, a.rows, N, a.K, T(1), a.dense, a.ld, M, ldm, T(0), out, ldo);
  }
}

inline int64_t total(const int32_t* counts, int64_t rows) {
  return std::accumulate(counts, counts + rows, int64_t(0));
}

// probs = sigmoid(pre + bias) in place (states == nullptr), or also states ~ Bernoulli(probs)
// with their index lists (keep_probs false: pre is left as is and only states are written).
// With masks, the states' bit masks too (mask_words_for(cols) words a row).
template <typename T>
void bernoulli(T* pre, int64_t ld_pre, bool keep_probs, T* states, int64_t ld_states, int64_t rows, int64_t cols,
               const T* bias, RandomStream s, int32_t* indices, int32_t* counts, int64_t indices_stride,
               uint64_t* masks = nullptr) {
  BernoulliParams<T> p{pre, bias, keep_probs ? pre : nullptr, states, rows, cols, ld_pre, ld_pre, ld_states, true, s};
  p.indices = states ? indices : nullptr;
  p.counts = states ? counts : nullptr;
  p.indices_stride = indices_stride;
  p.masks = states && indices ? masks : nullptr;
  sample_bernoulli(p);
}

// The two cache-aligned weight layouts the binary loops read rows of: W [nh, ldw] (for h @ W) and
// W^T [nv, ldt] (for v @ W^T), copied from the caller's [nh, nv] weights.
template <typename T> struct WeightLayouts {
  int64_t ldw, ldt;
  AlignedVector<T> W, WT;
  WeightLayouts(const T* weights, int64_t nh, int64_t nv)
      : ldw(padded_stride<T>(nv)), ldt(padded_stride<T>(nh)), W(nh * ldw, T(0)), WT(nv * ldt, T(0)) {
    for (int64_t j = 0; j < nh; ++j) std::copy(weights + j * nv, weights + (j + 1) * nv, W.data() + j * ldw);
    transpose_matrix<T>(W.data(), nh, nv, ldw, WT.data(), ldt);
  }
};

}  // namespace rbm_detail
}  // namespace cpu
}  // namespace fastgen

// Small pieces shared by the RBM loops of gibbs.cpp (the Gibbs chain), rbm.cpp (BLAS products),
// rbm_binary.cpp (binary products) and ais.cpp. Internal to csrc/.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "aligned.h"
#include "fastgen.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {
namespace rbm_detail {

inline RandomStream at(RandomStream s, uint64_t extra) { return RandomStream{s.seed, s.offset + extra}; }

// In place: x[r, :] = sigmoid(x[r, :] + bias) (probabilities only, no draw).
template <typename T> void sigmoid_rows(T* x, int64_t rows, int64_t cols, const T* bias) {
  BernoulliParams<T> p{x, bias, x, nullptr, rows, cols, cols, cols, 0, true, RandomStream{0, 0}};
  sample_bernoulli(p);
}

// states ~ Bernoulli(sigmoid(pre + bias)) without keeping the probabilities.
template <typename T>
void sample_states_rows(const T* pre, T* states, int64_t rows, int64_t cols, const T* bias, RandomStream s) {
  BernoulliParams<T> p{pre, bias, nullptr, states, rows, cols, cols, cols, cols, true, s};
  sample_bernoulli(p);
}

// What the CD/PCD loops (rbm.cpp, rbm_binary.cpp, rbm_sliced.cpp) size their buffers and the
// stream by, defined once so that every loop draws the same numbers: data rows per batch at
// most, chain rows (the persistent chains, or CD's one per data row), and the stream offsets a
// batch takes (offset 0: CD's first hidden states from the data; 1 + 2s and 2 + 2s: Gibbs step s).
struct BatchShape {
  int64_t max_batch, max_chains;
  bool persistent;
  uint64_t offsets_per_batch;
  template <typename T>
  explicit BatchShape(const TrainParams<T>& p)
      : max_batch(std::min(p.batch_size, p.n_samples)),
        max_chains(p.persistent_chains != nullptr ? p.n_chains : max_batch),
        persistent(p.persistent_chains != nullptr),
        offsets_per_batch(2 * static_cast<uint64_t>(p.cd_k) + 1) {}
};

// out[c] = a_scale * sum_r A[r, c] + b_scale * sum_r B[r, c] for columns [c0, c1) (row strides
// lda, ldb), on the calling thread; scratch holds at least c1 values.
template <typename T>
void column_sums(T* out, const T* A, int64_t a_rows, int64_t lda, T a_scale, const T* B, int64_t b_rows, int64_t ldb,
                 T b_scale, int64_t c0, int64_t c1, T* scratch) {
  std::fill(out + c0, out + c1, T(0));
  for (int64_t r = 0; r < a_rows; ++r) {
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) out[c] += A[r * lda + c];
  }
  std::fill(scratch + c0, scratch + c1, T(0));
  for (int64_t r = 0; r < b_rows; ++r) {
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) scratch[c] += B[r * ldb + c];
  }
#pragma omp simd
  for (int64_t c = c0; c < c1; ++c) out[c] = a_scale * out[c] + b_scale * scratch[c];
}

// The same for all columns [0, cols).
template <typename T>
void column_sums(T* out, const T* A, int64_t a_rows, int64_t lda, T a_scale, const T* B, int64_t b_rows, int64_t ldb,
                 T b_scale, int64_t cols) {
  std::vector<T> scratch(cols);
  column_sums(out, A, a_rows, lda, a_scale, B, b_rows, ldb, b_scale, 0, cols, scratch.data());
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
// panels: M packed by pack_table_panels, or nullptr (binary_matmul).
template <typename T>
void product(const BinaryOperand<T>& a, const T* M, int64_t ldm, int64_t N, T* out, int64_t ldo,
             const T* panels = nullptr) {
  if (a.nnz >= 0 && binary_product_pays(a.rows, a.K, N, a.nnz, is_double(T()))) {
    binary_matmul<T>(a.lists(), M, ldm, N, nullptr, out, ldo, false, panels);
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
               uint64_t* masks = nullptr, int64_t first_row = 0) {
  BernoulliParams<T> p{pre, bias, keep_probs ? pre : nullptr, states, rows, cols, ld_pre, ld_pre, ld_states, true, s};
  p.first_row = first_row;
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

#if defined(__AVX512F__)
// A square block of one vector per row (16 float32 or 8 float64 rows) transposed in registers:
// for b = L/2, ..., 1 the off-diagonal b x b sub-blocks of every 2b x 2b block swap places, one
// two-source permute per row and stage (4 stages of 16 for float32, 3 of 8 for float64).
template <typename T> struct RegisterTranspose {
  static constexpr int L = 64 / sizeof(T);
  static constexpr int kStages = sizeof(T) == 4 ? 4 : 3;
  using V = typename std::conditional<sizeof(T) == 4, __m512, __m512d>::type;
  // Stage s swaps sub-blocks of size b = L >> (s + 1). Lane k of the lower row of a pair keeps
  // its own value or takes the partner's lane k - b; the upper row takes the lower's lane k + b
  // or keeps its own. The partner's lanes are numbered L + k.
  __m512i lower[kStages], upper[kStages];
  RegisterTranspose() {
    for (int s = 0; s < kStages; ++s) {
      const int b = L >> (s + 1);
      alignas(64) int32_t lo[16], hi[16];
      for (int k = 0; k < L; ++k) {
        lo[k] = (k & b) ? L + k - b : k;
        hi[k] = (k & b) ? L + k : k + b;
      }
      lower[s] = load_index(lo);
      upper[s] = load_index(hi);
    }
  }
  static __m512i load_index(const int32_t* idx) {
    if constexpr (sizeof(T) == 4) return _mm512_load_si512(idx);
    else return _mm512_cvtepi32_epi64(_mm256_load_si256(reinterpret_cast<const __m256i*>(idx)));
  }
  static V permute(V a, __m512i idx, V b) {
    if constexpr (sizeof(T) == 4) return _mm512_permutex2var_ps(a, idx, b);
    else return _mm512_permutex2var_pd(a, idx, b);
  }
  void run(V* rows) const {
#pragma GCC unroll 4
    for (int s = 0; s < kStages; ++s) {
      const int b = L >> (s + 1);
#pragma GCC unroll 16
      for (int i = 0; i < L; ++i) {
        if (i & b) continue;
        const V a = rows[i], c = rows[i + b];
        rows[i] = permute(a, lower[s], c);
        rows[i + b] = permute(a, upper[s], c);
      }
    }
  }
};
#endif

// Columns are transposed in blocks of one 64-byte vector (the AVX-512 register blocks).
template <typename T> constexpr int64_t kTransposeColumns = 64 / sizeof(T);

// WT += VT (when VT is given), then W = WT^T, in blocks of one vector's width of rows of WT, for
// columns [j_begin, j_end) of WT only (j_begin a multiple of kTransposeColumns), on the calling
// thread: rows [j_begin, j_end) of W. Row strides are whole vectors (padded_stride), so
// full-vector loads and stores stay inside the rows' padding; rows past nv read as zeros and
// columns past j_end are not stored.
// WT: [nv, ldt], VT: [nv, ldt] or nullptr, W: [nh, ldw]
template <typename T>
void apply_and_transpose_columns(T* WT, const T* VT, int64_t nv, int64_t ldt, T* W, int64_t ldw, int64_t j_begin,
                                 int64_t j_end) {
#if defined(__AVX512F__)
  using R = RegisterTranspose<T>;
  const R transpose;
  constexpr int64_t L = R::L;
  // 16 rows of WT per block for both dtypes (two stacked 8 x 8 blocks for float64), so that
  // every W row receives two whole cache lines at a time.
  constexpr int64_t kStack = 16 / L, kRows = kStack * L;
  const int64_t blocks = (nv + kRows - 1) / kRows, nh = j_end;
  for (int64_t j0 = j_begin; j0 < j_end; j0 += L) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t i0 = blk * kRows, rows = std::min(kRows, nv - i0);
      typename R::V v[kRows];
      for (int64_t ii = 0; ii < kRows; ++ii) {
        if (ii >= rows) {
          std::memset(&v[ii], 0, sizeof(v[ii]));
          continue;
        }
        T* src = WT + (i0 + ii) * ldt + j0;
        std::memcpy(&v[ii], src, sizeof(v[ii]));
        if (VT != nullptr) {
          typename R::V d;
          std::memcpy(&d, VT + (i0 + ii) * ldt + j0, sizeof(d));
          if constexpr (sizeof(T) == 4) v[ii] = _mm512_add_ps(v[ii], d);
          else v[ii] = _mm512_add_pd(v[ii], d);
          std::memcpy(src, &v[ii], sizeof(v[ii]));
        }
      }
      for (int64_t k = 0; k < kStack; ++k) transpose.run(v + k * L);
      const int64_t cols = std::min(L, nh - j0);
      for (int64_t jj = 0; jj < cols; ++jj) {
        T* dst = W + (j0 + jj) * ldw + i0;
        for (int64_t k = 0; k < kStack; ++k) {
          if (k * L < rows) std::memcpy(dst + k * L, &v[k * L + jj], sizeof(v[0]));
        }
      }
    }
  }
#else
  constexpr int64_t kRows = 16;
  const int64_t blocks = (nv + kRows - 1) / kRows;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i0 = b * kRows, rows = std::min(kRows, nv - i0);
    if (VT != nullptr) {
      for (int64_t i = i0; i < i0 + rows; ++i) {
#pragma omp simd
        for (int64_t j = j_begin; j < j_end; ++j) WT[i * ldt + j] += VT[i * ldt + j];
      }
    }
    const T* src = WT + i0 * ldt;
    T* dst = W + i0;
    for (int64_t j = j_begin; j < j_end; ++j)
      for (int64_t ii = 0; ii < rows; ++ii) dst[j * ldw + ii] = src[ii * ldt + j];
  }
#endif
}

// All of WT, split among threads by columns, as the gradient product before it splits its
// column tiles: each thread re-reads the part of WT it has just written (in its own cache) and
// writes whole W rows.
template <typename T> void apply_and_transpose(T* WT, const T* VT, int64_t nv, int64_t nh, int64_t ldt, T* W, int64_t ldw) {
  constexpr int64_t kColumns = kTransposeColumns<T>;
  const int64_t column_blocks = (nh + kColumns - 1) / kColumns;
#pragma omp parallel for schedule(static) if (nv * nh >= 4 * kParallelMinElements)
  for (int64_t cb = 0; cb < column_blocks; ++cb) {
    apply_and_transpose_columns(WT, VT, nv, ldt, W, ldw, cb * kColumns, std::min(nh, (cb + 1) * kColumns));
  }
}

}  // namespace rbm_detail
}  // namespace cpu
}  // namespace fastgen

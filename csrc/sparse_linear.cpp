// A linear layer on inputs with many exact zeros. A dense GEMM multiplies every zero of x too;
// here each row of x becomes the list of its nonzeros (column, value), and the product runs as
// binary.cpp's sparse_matmul: the output row's tile in registers while the rows of w_t its
// nonzeros select stream through. The weight gradient x^T @ grad_y is the same product on the
// column lists of x (a counting sort of the row lists, rows ascending), with grad_y's rows
// selected. MNIST digits are about 19 % nonzero, so both passes do a fifth of a GEMM's work.
//
// The lists are built per call from x (one count pass, then one gather pass): building costs a
// small fraction of the product, and the backward's inputs (x, grad_y) are all it needs.
#include <algorithm>
#include <memory>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "fastgen.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {
namespace {

// Serial on purpose: each pass over x takes microseconds, less than waking a second OpenMP
// thread (the threads wait passively, see fastgen/_cpu.py), so the call's only parallel region is
// the product.

// counts[r] = nonzeros of row r of x [rows, cols]; false when x holds a NaN or infinity (the
// check rides on the same read of x).
template <typename T> bool count_row_nonzeros(const T* x, int64_t rows, int64_t cols, int32_t* counts) {
  int bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * cols;
    int32_t n = 0;
#pragma omp simd reduction(+ : n) reduction(| : bad)
    for (int64_t c = 0; c < cols; ++c) {
      n += row[c] != T(0) ? 1 : 0;
      bad |= (row[c] - row[c] != T(0)) ? 1 : 0;  // inf - inf and NaN - NaN are NaN
    }
    counts[r] = n;
  }
  return bad == 0;
}

// Slots each row's list owns beyond its entries: the gather stores whole vectors (or, without
// AVX-512, one element per column) at the current end of the list and advances only past the
// nonzeros, so its stores reach up to one vector past the row's entries.
constexpr int64_t kGatherSlack = 16;

// Row r's nonzeros (columns ascending, values) at starts[r], branch-free: AVX-512 compresses
// each vector's nonzeros into the low lanes of a register, stored whole.
template <typename T>
void gather_nonzeros(const T* x, int64_t rows, int64_t cols, const int64_t* starts, int32_t* indices, T* values) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * cols;
    int32_t* idx = indices + starts[r];
    T* val = values + starts[r];
    int32_t n = 0;
    int64_t c = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
    if constexpr (sizeof(T) == 4) {
      const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
      for (; c + 16 <= cols; c += 16) {
        const __m512 v = _mm512_loadu_ps(reinterpret_cast<const float*>(row) + c);
        const __mmask16 nz = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        const __m512i col = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(c)), lanes);
        _mm512_storeu_ps(reinterpret_cast<float*>(val) + n, _mm512_maskz_compress_ps(nz, v));
        _mm512_storeu_si512(idx + n, _mm512_maskz_compress_epi32(nz, col));
        n += __builtin_popcount(nz);
      }
    } else {
      const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      for (; c + 8 <= cols; c += 8) {
        const __m512d v = _mm512_loadu_pd(reinterpret_cast<const double*>(row) + c);
        const __mmask8 nz = _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_NEQ_UQ);
        const __m256i col = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(c)), lanes);
        _mm512_storeu_pd(reinterpret_cast<double*>(val) + n, _mm512_maskz_compress_pd(nz, v));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + n), _mm256_maskz_compress_epi32(nz, col));
        n += __builtin_popcount(nz);
      }
    }
#endif
    for (; c < cols; ++c) {
      const T v = row[c];
      idx[n] = static_cast<int32_t>(c);
      val[n] = v;
      n += v != T(0) ? 1 : 0;
    }
  }
}

// The nonzeros of x as row lists: counts (filled by count_row_nonzeros), starts, indices, values.
template <typename T> struct RowLists {
  std::vector<int64_t> starts;
  std::unique_ptr<int32_t[]> indices;  // uninitialised: only the listed entries are ever read
  std::unique_ptr<T[]> values;

  BinaryRows build(const T* x, int64_t rows, int64_t cols, const int32_t* counts) {
    starts.resize(rows);
    int64_t total = 0;
    for (int64_t r = 0; r < rows; ++r) {
      starts[r] = total;
      total += counts[r] + kGatherSlack;
    }
    indices.reset(new int32_t[std::max<int64_t>(total, 1)]);
    values.reset(new T[std::max<int64_t>(total, 1)]);
    gather_nonzeros(x, rows, cols, starts.data(), indices.get(), values.get());
    return lists(rows, cols, counts);
  }
  BinaryRows lists(int64_t rows, int64_t cols, const int32_t* counts) const {
    return BinaryRows{indices.get(), counts, starts.data(), 0, rows, cols};
  }
};

bool too_dense(int64_t nnz, int64_t rows, int64_t cols, double max_density) {
  const double size = static_cast<double>(rows) * static_cast<double>(cols);
  return size > 0 && static_cast<double>(nnz) > max_density * size;
}

// The forward's and the backward's common first step: count x's nonzeros per row (which also
// finds NaN / infinity), refuse above the density crossover, else list them. nnz: their total.
template <typename T>
int x_row_lists(const SparseLinearParams<T>& p, std::vector<int32_t>& counts, RowLists<T>& lists, int64_t& nnz) {
  if (!count_row_nonzeros(p.x, p.rows, p.in, counts.data())) return kSparseLinearNotFinite;
  nnz = 0;
  for (int32_t n : counts) nnz += n;
  if (too_dense(nnz, p.rows, p.in, p.max_density)) return kSparseLinearTooDense;
  lists.build(p.x, p.rows, p.in, counts.data());
  return kSparseLinearDone;
}

// sums[c] = sum over r ascending of m[r, c] (serial, like the passes above: a few microseconds).
template <typename T> void column_sums(const T* m, int64_t rows, int64_t cols, T* sums) {
  std::fill(sums, sums + cols, T(0));
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = m + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) sums[c] += row[c];
  }
}

}  // namespace

template <typename T> int sparse_linear_forward(const SparseLinearParams<T>& p, const T* w_t, const T* bias, T* y) {
  std::vector<int32_t> counts(p.rows);
  RowLists<T> lists;
  int64_t nnz = 0;
  const int status = x_row_lists(p, counts, lists, nnz);
  if (status != kSparseLinearDone) return status;
  const BinaryRows a = lists.lists(p.rows, p.in, counts.data());
  sparse_matmul<T>(a, lists.values.get(), w_t, p.out, p.out, bias, y, p.out);
  return kSparseLinearDone;
}

template <typename T>
int sparse_linear_backward(const SparseLinearParams<T>& p, const T* grad_y, T* grad_w_t, T* grad_b) {
  if (grad_b != nullptr) column_sums(grad_y, p.rows, p.out, grad_b);
  if (grad_w_t == nullptr) return kSparseLinearDone;
  std::vector<int32_t> counts(p.rows);
  RowLists<T> lists;
  int64_t nnz = 0;
  const int status = x_row_lists(p, counts, lists, nnz);
  if (status != kSparseLinearDone) return status;
  const BinaryRows a = lists.lists(p.rows, p.in, counts.data());
  std::unique_ptr<int32_t[]> col_indices(new int32_t[std::max<int64_t>(nnz, 1)]);
  std::unique_ptr<T[]> col_values(new T[std::max<int64_t>(nnz, 1)]);
  std::vector<int32_t> col_counts(p.in);
  std::vector<int64_t> col_starts(p.in);
  transpose_sparse_rows<T>(a, lists.values.get(), col_indices.get(), col_values.get(), col_counts.data(),
                           col_starts.data());
  const BinaryRows columns{col_indices.get(), col_counts.data(), col_starts.data(), 0, p.in, p.rows};
  sparse_matmul<T>(columns, col_values.get(), grad_y, p.out, p.out, nullptr, grad_w_t, p.out);
  return kSparseLinearDone;
}

#define FASTGEN_INSTANTIATE(T)                                                                        \
  template int sparse_linear_forward<T>(const SparseLinearParams<T>&, const T*, const T*, T*);        \
  template int sparse_linear_backward<T>(const SparseLinearParams<T>&, const T*, T*, T*);
FASTGEN_INSTANTIATE(float)
FASTGEN_INSTANTIATE(double)
#undef FASTGEN_INSTANTIATE

}  // namespace cpu
}  // namespace fastgen

// Products with a binary operand. When one factor of a product is a 0/1 matrix, each output row
// is the sum of the rows of the other factor picked out by its ones: no multiplications, and
// only (density x) the additions of a dense GEMM. The ones are kept as per-row index lists
// (BinaryRows), which the Bernoulli sampler writes while it draws, and which a counting sort
// turns into per-column lists for the transposed product of the gradient statistics.
//
// The output tile of one row lives in registers (GCC vector extensions, so the same code is
// AVX-512, AVX2 or SSE by the target) while the selected rows stream through it. Each output
// element is summed by one thread in index order, so results do not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fastgen.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {
namespace {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif
// Vectors per register tile: 8 accumulators leave room for the loads on every x86 target.
constexpr int kTileVectors = 8;
// Bytes of M one pass of binary_matmul keeps hot in L1 (of 32 KiB, leaving room for the rest).
constexpr int64_t kL1Budget = 24 * 1024;

// Density up to which the RBM loops use binary_matmul for an operand that has index lists.
// Measured on the development CPU (2-core AMD EPYC, AVX-512) with `python -m bench binary`:
// for one product in isolation SciPy's OpenBLAS wins above densities of 0.15-0.65 (by shape
// and dtype; bench/results/binary_crossover.json), but inside the CD/PCD loop every product
// handed to BLAS also hands the cores from OpenMP's threads to OpenBLAS's and back, and the
// whole-epoch sweep was fastest with every binary operand on binary_matmul. Hence 1 by
// default; set_binary_max_density (FASTGEN_BINARY_MAX_DENSITY at import) changes it, 0 sends
// every product to BLAS.
std::atomic<double> g_binary_max_density{1.0};

template <typename T> struct Simd {
  typedef T V __attribute__((vector_size(kVectorBytes)));
  static constexpr int kLanes = kVectorBytes / sizeof(T);
  static V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
  }
  static void store(T* p, V v) { std::memcpy(p, &v, sizeof(V)); }
};

// out[0 : kVecs * lanes] = init + sum_k M[idx[k], col0 : col0 + kVecs * lanes]
template <typename T, int kVecs>
inline void sum_rows_tile(const int32_t* idx, int32_t n, const T* M, int64_t ldm, const T* init, T* out) {
  using S = Simd<T>;
  typename S::V acc[kVecs];
#pragma GCC unroll 8
  for (int t = 0; t < kVecs; ++t) acc[t] = init ? S::load(init + t * S::kLanes) : typename S::V{};
  for (int32_t k = 0; k < n; ++k) {
    const T* m = M + static_cast<int64_t>(idx[k]) * ldm;
#pragma GCC unroll 8
    for (int t = 0; t < kVecs; ++t) acc[t] += S::load(m + t * S::kLanes);
  }
#pragma GCC unroll 8
  for (int t = 0; t < kVecs; ++t) S::store(out + t * S::kLanes, acc[t]);
}

// Fewer than one vector of columns.
template <typename T>
inline void sum_rows_scalar(const int32_t* idx, int32_t n, const T* M, int64_t ldm, const T* init, T* out,
                            int64_t width) {
  T acc[kVectorBytes / sizeof(T)];
  for (int64_t c = 0; c < width; ++c) acc[c] = init ? init[c] : T(0);
  for (int32_t k = 0; k < n; ++k) {
    const T* m = M + static_cast<int64_t>(idx[k]) * ldm;
    for (int64_t c = 0; c < width; ++c) acc[c] += m[c];
  }
  for (int64_t c = 0; c < width; ++c) out[c] = acc[c];
}

// Columns [col0, col0 + width) of one output row, width <= one tile.
template <typename T>
void sum_rows(const int32_t* idx, int32_t n, const T* M, int64_t ldm, const T* init, T* out, int64_t width) {
  constexpr int64_t L = Simd<T>::kLanes;
  int64_t c = 0;
  switch (width / L) {
    case 8: sum_rows_tile<T, 8>(idx, n, M, ldm, init, out); c = 8 * L; break;
    case 7: sum_rows_tile<T, 7>(idx, n, M, ldm, init, out); c = 7 * L; break;
    case 6: sum_rows_tile<T, 6>(idx, n, M, ldm, init, out); c = 6 * L; break;
    case 5: sum_rows_tile<T, 5>(idx, n, M, ldm, init, out); c = 5 * L; break;
    case 4: sum_rows_tile<T, 4>(idx, n, M, ldm, init, out); c = 4 * L; break;
    case 3: sum_rows_tile<T, 3>(idx, n, M, ldm, init, out); c = 3 * L; break;
    case 2: sum_rows_tile<T, 2>(idx, n, M, ldm, init, out); c = 2 * L; break;
    case 1: sum_rows_tile<T, 1>(idx, n, M, ldm, init, out); c = 1 * L; break;
    default: break;
  }
  if (c < width) sum_rows_scalar(idx, n, M + c, ldm, init ? init + c : nullptr, out + c, width - c);
}

}  // namespace

template <typename T>
void binary_matmul(const BinaryRows& a, const T* M, int64_t ldm, int64_t N, const T* bias, T* out, int64_t ldo,
                   bool accumulate) {
  if (a.rows == 0 || N == 0) return;
  // Column tiles of at most kTileVectors vectors, equal widths so the threads' shares balance.
  constexpr int64_t kLanes = Simd<T>::kLanes;
  const int64_t n_tiles = (N + kTileVectors * kLanes - 1) / (kTileVectors * kLanes);
  const int64_t kTile = ((N + n_tiles - 1) / n_tiles + kLanes - 1) / kLanes * kLanes;
  // Rows of M per pass, so that the pass's slice of M (k_chunk x tile) stays in L1 while every
  // output row adds its share of it; the partial sums wait in `out`, a row at a time.
  const int64_t k_chunk = std::max<int64_t>(8, kL1Budget / (kTile * static_cast<int64_t>(sizeof(T))));
  // Two row halves per tile when there are few tiles, so that both threads get work.
  const int64_t n_row_parts = (n_tiles % 2 == 1 && a.rows >= 64) ? 2 : 1;
  const int64_t rows_per_part = (a.rows + n_row_parts - 1) / n_row_parts;
  int64_t nnz = 0;
  for (int64_t r = 0; r < a.rows; ++r) nnz += a.counts[r];
  const int64_t items = n_tiles * n_row_parts;
#pragma omp parallel if (nnz * N >= 16 * kParallelMinElements && items > 1)
  {
    std::vector<int32_t> cursor(rows_per_part);
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t tile = item / n_row_parts, part = item % n_row_parts;
      const int64_t c0 = tile * kTile, width = std::min(kTile, N - c0);
      const int64_t r0 = part * rows_per_part, r1 = std::min(a.rows, r0 + rows_per_part);
      std::fill(cursor.begin(), cursor.end(), 0);
      for (int64_t k0 = 0; k0 < std::max<int64_t>(a.cols, 1); k0 += k_chunk) {
        const int32_t k1 = static_cast<int32_t>(std::min<int64_t>(a.cols, k0 + k_chunk));
        const bool first = k0 == 0;
        for (int64_t r = r0; r < r1; ++r) {
          const int32_t* idx = a.indices + a.start(r);
          const int32_t n = a.counts[r];
          int32_t begin = cursor[r - r0], end = begin;
          while (end < n && idx[end] < k1) ++end;
          cursor[r - r0] = end;
          T* o = out + r * ldo + c0;
          if (!first && begin == end) continue;
          const T* init = first ? (accumulate ? o : (bias ? bias + c0 : nullptr)) : o;
          sum_rows<T>(idx + begin, end - begin, M + c0, ldm, init, o, width);
        }
      }
    }
  }
}

void set_binary_max_density(double density) { g_binary_max_density.store(density, std::memory_order_relaxed); }
double binary_max_density() { return g_binary_max_density.load(std::memory_order_relaxed); }

bool binary_product_pays(int64_t rows, int64_t K, int64_t N, int64_t nnz, bool is_double) {
  if (rows == 0 || K == 0 || N == 0) return true;
  const double density = static_cast<double>(nnz) / (static_cast<double>(rows) * static_cast<double>(K));
  (void)N;
  (void)is_double;
  const double limit = g_binary_max_density.load(std::memory_order_relaxed);
  return limit > 0.0 && density <= limit;
}

int64_t binary_rows_from_dense_impl(const void* x, bool is_double, int64_t rows, int64_t cols, int64_t ld,
                                    int32_t* indices, int32_t* counts, int64_t stride) {
  int64_t nnz = 0;
  bool binary = true;
  for (int64_t r = 0; r < rows && binary; ++r) {
    int32_t* out = indices + r * stride;
    int32_t n = 0;
    if (is_double) {
      const double* row = static_cast<const double*>(x) + r * ld;
      for (int64_t c = 0; c < cols; ++c) {
        binary &= (row[c] == 0.0) | (row[c] == 1.0);
        out[n] = static_cast<int32_t>(c);
        n += row[c] != 0.0;
      }
    } else {
      const float* row = static_cast<const float*>(x) + r * ld;
      for (int64_t c = 0; c < cols; ++c) {
        binary &= (row[c] == 0.0f) | (row[c] == 1.0f);
        out[n] = static_cast<int32_t>(c);
        n += row[c] != 0.0f;
      }
    }
    counts[r] = n;
    nnz += n;
  }
  return binary ? nnz : -1;
}

template <typename T>
int64_t binary_rows_from_dense(const T* x, int64_t rows, int64_t cols, int64_t ld, int32_t* indices, int32_t* counts,
                               int64_t stride) {
  return binary_rows_from_dense_impl(x, sizeof(T) == 8, rows, cols, ld, indices, counts, stride);
}

int64_t transpose_binary_rows(const BinaryRows* parts, const int64_t* row_offsets, int n_parts, int64_t cols,
                              int32_t* col_indices, int32_t* col_counts, int64_t* col_starts) {
  std::fill(col_counts, col_counts + cols, 0);
  for (int p = 0; p < n_parts; ++p) {
    const BinaryRows& a = parts[p];
    for (int64_t r = 0; r < a.rows; ++r) {
      const int32_t* idx = a.indices + a.start(r);
      for (int32_t k = 0; k < a.counts[r]; ++k) ++col_counts[idx[k]];
    }
  }
  int64_t total = 0;
  for (int64_t c = 0; c < cols; ++c) {
    col_starts[c] = total;
    total += col_counts[c];
  }
  // Rows are visited in ascending order, so every column list is sorted: the transposed product
  // then sums in row order, the same order for every thread count.
  std::vector<int64_t> cursor(col_starts, col_starts + cols);
  for (int p = 0; p < n_parts; ++p) {
    const BinaryRows& a = parts[p];
    for (int64_t r = 0; r < a.rows; ++r) {
      const int32_t* idx = a.indices + a.start(r);
      const int32_t row = static_cast<int32_t>(row_offsets[p] + r);
      for (int32_t k = 0; k < a.counts[r]; ++k) col_indices[cursor[idx[k]]++] = row;
    }
  }
  return total;
}

template <typename T> void transpose_matrix(const T* in, int64_t rows, int64_t cols, int64_t ldi, T* out, int64_t ldo) {
  constexpr int64_t kBlock = 32;
  const int64_t rb = (rows + kBlock - 1) / kBlock, cb = (cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (rows * cols >= 4 * kParallelMinElements)
  for (int64_t item = 0; item < rb * cb; ++item) {
    const int64_t r0 = (item / cb) * kBlock, c0 = (item % cb) * kBlock;
    const int64_t r1 = std::min(rows, r0 + kBlock), c1 = std::min(cols, c0 + kBlock);
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t r = r0; r < r1; ++r) out[c * ldo + r] = in[r * ldi + c];
  }
}

#define FASTGEN_INSTANTIATE(T)                                                                                    \
  template void binary_matmul<T>(const BinaryRows&, const T*, int64_t, int64_t, const T*, T*, int64_t, bool);      \
  template int64_t binary_rows_from_dense<T>(const T*, int64_t, int64_t, int64_t, int32_t*, int32_t*, int64_t); \
  template void transpose_matrix<T>(const T*, int64_t, int64_t, int64_t, T*, int64_t);
FASTGEN_INSTANTIATE(float)
FASTGEN_INSTANTIATE(double)
#undef FASTGEN_INSTANTIATE

}  // namespace cpu
}  // namespace fastgen

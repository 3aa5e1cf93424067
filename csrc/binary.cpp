// Products with a binary or sparse operand. When one factor of a product is a 0/1 matrix, each
// output row is the sum of the rows of the other factor picked out by its ones: no
// multiplications, and only (density x) the additions of a dense GEMM. The ones are kept as
// per-row index lists (BinaryRows), which the Bernoulli sampler writes while it draws, and which a
// counting sort turns into per-column lists for the transposed product of the gradient
// statistics. A sparse operand with arbitrary values (sparse_matmul: data with many exact zeros)
// is the same index lists plus each entry's value, and runs through the same tiles, each
// selected row scaled by its value (one fused multiply-add where the target has FMA).
//
// The output tile of one row lives in registers (GCC vector extensions, so the same code is
// AVX-512, AVX2 or SSE by the target) while the selected rows stream through it. Each output
// element is summed by one thread in index order, so results do not depend on the thread count.
//
// A 0/1 operand with many rows and many ones per row (sampled hidden states are about half ones)
// goes through subset-sum tables instead (the "method of the Four Russians"): see table_matmul.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "aligned.h"
#include "fastgen.h"
#include "index_lists.h"
#include "philox_cpu.h"
#include "row_sums.h"

namespace fastgen {
namespace cpu {
namespace {

// Bytes of M one pass of binary_matmul keeps hot in L1 (of 32 KiB, leaving room for the rest).
constexpr int64_t kL1Budget = 24 * 1024;
// The same for sparse_matmul, whose passes carry a value per entry: more, shorter passes each
// reload and store the partial output row (docs/performance.md, "L1 budgets").
constexpr int64_t kL1BudgetWeighted = 64 * 1024;
// Passes over M at least this long per row, on average: at low density a pass holds too few
// entries a row to pay for its own bookkeeping (docs/performance.md, "L1 budgets").
constexpr int64_t kMinEntriesPerPass = 16;
// M up to this size goes through in one pass per tile when the product is too small to split
// among threads: there the L1 passes and the parallel path's bookkeeping cost more than they save.
constexpr int64_t kSmallProductBytes = 256 * 1024;

// Density up to which the RBM loops use binary_matmul for an operand that has index lists.
// 1 by default: inside the CD/PCD loop every product handed to BLAS also hands the cores from
// OpenMP's threads to OpenBLAS's and back, which outweighs BLAS's lead on a dense product
// (docs/performance.md, "binary products"). set_binary_max_density
// (FASTGEN_BINARY_MAX_DENSITY at import) changes it, 0 sends every product to BLAS.
std::atomic<double> g_binary_max_density{1.0};
// Whether binary_matmul may use subset-sum tables (set_binary_tables; tests compare both paths).
std::atomic<bool> g_binary_tables{true};

// ---- Subset-sum tables --------------------------------------------------------------------
// Cut the K rows of M into groups of G. For one column tile, tabulate the sums of all 2^G subsets
// of every group (2^G - 1 vector additions per group, each entry one row plus a smaller entry);
// an output row is then one table entry per group, K / G additions, where summing its selected
// rows one by one takes (density x K). Each row's pattern within a group is its G-bit code.
// Tiles are one vector wide. The groups are taken in chunks of kTableChunkBytes of table: a
// chunk's tables are built, every row block adds its entries from them, and the partial sums wait
// in `out` (one vector a row) for the next chunk. A whole tile's table (344 KiB for K = 500,
// G = 6, float32) would be read from L2; a chunk's mostly from L1. Blocks of 8 rows keep 8
// independent sums in flight.
//
// The cost model below (one unit per table entry built or read, one per selected row gathered,
// tables taken when they cost at most kTableMargin of the gather) puts the crossing between
// tables and the index-list gather near density 0.2, where it was measured; chunks keep a
// chunk's tables in L1, and groups of more than 6 bits build more than they save
// (docs/performance.md, "subset-sum tables").
constexpr int kMinGroupBits = 4, kMaxGroupBits = 6;
constexpr int kTableRowBlock = 8;
constexpr int64_t kTableChunkBytes = 48 * 1024;
constexpr double kTableMargin = 0.9;

// The group size whose tables cost least for this product, or 0 when summing the selected
// rows one by one is expected to be cheaper.
inline int table_group_bits(int64_t rows, int64_t K, int64_t nnz) {
  if (!g_binary_tables.load(std::memory_order_relaxed) || rows < kTableRowBlock || K < kMaxGroupBits) return 0;
  int best = 0;
  double best_cost = kTableMargin * static_cast<double>(nnz);
  for (int g = kMinGroupBits; g <= kMaxGroupBits; ++g) {
    const double groups = static_cast<double>((K + g - 1) / g);
    const double cost = groups * (static_cast<double>(rows) + static_cast<double>(1 << g));
    if (cost < best_cost) best = g, best_cost = cost;
  }
  return best;
}

// acc[i] = start + sum over groups [g0, g1) of table[g - g0][codes[i][g]] for kRows rows, stored
// at out rows; start is `init` on the first pass over the groups and the stored partial sums after.
template <typename T, int G, int kRows>
inline void table_rows(const uint8_t* codes, int64_t n_groups, int64_t g0, int64_t g1, const typename Simd<T>::V* table,
                       const typename Simd<T>::V* init, T* out, int64_t ldo, int width) {
  using S = Simd<T>;
  constexpr int E = 1 << G;
  typename S::V acc[kRows];
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) acc[i] = init ? *init : S::load_upto(out + i * ldo, width);
  for (int64_t g = g0; g < g1; ++g) {
    const typename S::V* entries = table + (g - g0) * E;
#pragma GCC unroll 8
    for (int i = 0; i < kRows; ++i) acc[i] += entries[codes[i * n_groups + g]];
  }
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) S::store_upto(out + i * ldo, acc[i], width);
}

template <typename T, int G>
void table_matmul(const BinaryRows& a, const T* M, int64_t ldm, const T* panels, int64_t N, const T* bias, T* out,
                  int64_t ldo, bool accumulate, bool parallel) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int E = 1 << G;
  constexpr int64_t L = S::kLanes;
  const int64_t rows = a.rows, K = a.cols, n_groups = (K + G - 1) / G, n_tiles = (N + L - 1) / L;
  const int64_t chunk_groups = std::max<int64_t>(1, kTableChunkBytes / (E * static_cast<int64_t>(sizeof(V))));
  const int64_t n_words = mask_words_for(K);
  AlignedVector<uint8_t> codes(rows * n_groups);
  AlignedVector<uint64_t> masks(a.masks ? 0 : rows * n_words);
#pragma omp parallel if (parallel)
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      // The row as a bit mask first (the sampler's, when it wrote one), then cut into G-bit codes.
      const uint64_t* bits;
      if (a.masks != nullptr) {
        bits = a.masks + r * n_words;
      } else {
        index_list_mask(a.indices + a.start(r), a.counts[r], n_words, masks.data() + r * n_words);
        bits = masks.data() + r * n_words;
      }
      uint8_t* code = codes.data() + r * n_groups;
      for (int64_t g = 0; g < n_groups; ++g) {
        const int64_t bit = g * G, lo = bit >> 6, shift = bit & 63;
        uint64_t field = bits[lo] >> shift;
        // A last group that runs past the row's last word holds columns >= K only there (their
        // table rows are zero): the word after is the next row's, or past the end.
        if (shift + G > 64 && lo + 1 < n_words) field |= bits[lo + 1] << (64 - shift);
        code[g] = static_cast<uint8_t>(field & (E - 1));
      }
    }
    // One table per thread, kept between calls: a fresh buffer per call would be mapped and
    // faulted in each time.
    static thread_local std::vector<V, CacheAlignedAllocator<V>> table;
    if (static_cast<int64_t>(table.size()) < chunk_groups * E) table.resize(chunk_groups * E);
    // The (tile, row) pairs in tile-major order, dealt out in equal contiguous shares: whole
    // tiles would leave one thread a tile more whenever their count is odd (49 for 784 columns
    // of float32, 2 % of the product on two threads). A tile split between two threads has its
    // tables built by both.
    int thread = 0, team = 1;
#ifdef _OPENMP
    thread = omp_get_thread_num();
    team = omp_get_num_threads();
#endif
    const int64_t units = n_tiles * rows, u0 = units * thread / team, u1 = units * (thread + 1) / team;
    for (int64_t t = rows > 0 ? u0 / rows : 0; t < n_tiles && t * rows < u1; ++t) {
      const int64_t r_begin = std::max<int64_t>(u0 - t * rows, 0), r_end = std::min(u1 - t * rows, rows);
      const int64_t c0 = t * L;
      const int width = static_cast<int>(std::min(L, N - c0));
      const V bias_row = bias ? S::load_upto(bias + c0, width) : V{};
      for (int64_t g0 = 0; g0 < n_groups; g0 += chunk_groups) {
        const int64_t g1 = std::min(n_groups, g0 + chunk_groups);
        for (int64_t g = g0; g < g1; ++g) {
          // Entry c is the sum of the rows g * G + b for the bits b of c, lowest first: the
          // entries below 2^b plus row b give those from 2^b to 2^(b+1) - 1.
          V* entries = table.data() + (g - g0) * E;
          entries[0] = V{};
#pragma GCC unroll 6
          for (int b = 0; b < G; ++b) {
            const int64_t k = g * G + b;
            V row{};
            if (k < K) row = panels ? S::load(panels + (t * K + k) * L) : S::load_upto(M + k * ldm + c0, width);
            for (int c = 0; c < (1 << b); ++c) entries[(1 << b) + c] = entries[c] + row;
          }
        }
        // The first pass starts from the bias (or zero); later ones, and every pass when
        // accumulating, from what is stored in `out`.
        const V* init = (g0 == 0 && !accumulate) ? &bias_row : nullptr;
        int64_t r = r_begin;
        for (; r + kTableRowBlock <= r_end; r += kTableRowBlock)
          table_rows<T, G, kTableRowBlock>(codes.data() + r * n_groups, n_groups, g0, g1, table.data(), init,
                                           out + r * ldo + c0, ldo, width);
        for (; r < r_end; ++r)
          table_rows<T, G, 1>(codes.data() + r * n_groups, n_groups, g0, g1, table.data(), init, out + r * ldo + c0,
                              ldo, width);
      }
    }
  }
}

// out = bias + a @ M (or out += a @ M) for index lists a, weighted by `values` (laid out like
// a.indices) when kWeighted: binary_matmul and sparse_matmul.
template <typename T, bool kWeighted>
void rows_matmul(const BinaryRows& a, const T* values, const T* M, int64_t ldm, int64_t N, const T* bias, T* out,
                 int64_t ldo, bool accumulate, const T* panels = nullptr) {
  if (a.rows == 0 || N == 0) return;
  // Column tiles of at most kTileVectors vectors, the vectors dealt out evenly (whole vectors;
  // the last tile takes a partial one) so that the threads' shares balance.
  constexpr int64_t kLanes = Simd<T>::kLanes;
  const int64_t n_vectors = (N + kLanes - 1) / kLanes;
  const int64_t n_tiles = (n_vectors + kTileVectors - 1) / kTileVectors;
  const int64_t kTile = (n_vectors + n_tiles - 1) / n_tiles * kLanes;  // the widest tile
  int64_t nnz = 0;
  for (int64_t r = 0; r < a.rows; ++r) nnz += a.counts[r];
  // Rows of M per pass, so that the pass's slice of M (k_chunk x tile) stays in L1 while every
  // output row adds its share of it; the partial sums wait in `out`, a row at a time. A sparse
  // operand gets longer passes, so that each row's share (kMinEntriesPerPass on average) is
  // worth reloading and storing its partial sums for, even though the slice then spills to L2.
  const int64_t budget = kWeighted ? kL1BudgetWeighted : kL1Budget;
  const int64_t k_l1 = std::max<int64_t>(8, budget / (kTile * static_cast<int64_t>(sizeof(T))));
  const int64_t k_chunk = std::max(k_l1, nnz > 0 ? kMinEntriesPerPass * a.rows * a.cols / nnz : 0);
  // Columns [c0, c0 + width) of tile t: whole vectors dealt out evenly.
  const auto tile_columns = [&](int64_t t, int64_t& c0, int64_t& width) {
    c0 = t * n_vectors / n_tiles * kLanes;
    width = std::min(N, (t + 1) * n_vectors / n_tiles * kLanes) - c0;
  };
  const bool parallel = nnz * N >= 16 * kParallelMinElements;
  if constexpr (!kWeighted) {
    switch (table_group_bits(a.rows, a.cols, nnz)) {
      case 4: return table_matmul<T, 4>(a, M, ldm, panels, N, bias, out, ldo, accumulate, parallel);
      case 5: return table_matmul<T, 5>(a, M, ldm, panels, N, bias, out, ldo, accumulate, parallel);
      case 6: return table_matmul<T, 6>(a, M, ldm, panels, N, bias, out, ldo, accumulate, parallel);
      default: break;
    }
  }
  if (!parallel && (k_chunk >= a.cols || a.cols * N * static_cast<int64_t>(sizeof(T)) <= kSmallProductBytes)) {
    // Small products (scikit-learn's digits RBM: 10 rows a batch, M in L2) in one pass per tile,
    // with none of the parallel path's bookkeeping, which cost as much as the sums themselves.
    for (int64_t tile = 0; tile < n_tiles; ++tile) {
      int64_t c0, width;
      tile_columns(tile, c0, width);
      for (int64_t r = 0; r < a.rows; ++r) {
        const int64_t start = a.start(r);
        T* o = out + r * ldo + c0;
        const T* init = accumulate ? o : (bias ? bias + c0 : nullptr);
        sum_rows<T, kWeighted>(a.indices + start, kWeighted ? values + start : nullptr, a.counts[r], M + c0, ldm,
                               init, o, width);
      }
    }
    return;
  }
  // Two row halves per tile when there are few tiles, so that both threads get work.
  const int64_t n_row_parts = (n_tiles % 2 == 1 && a.rows >= 64) ? 2 : 1;
  const int64_t rows_per_part = (a.rows + n_row_parts - 1) / n_row_parts;
  // Where each row's list crosses into the next chunk of k, found once here rather than by every
  // tile: row r's entries for chunk j are [bounds[r][j], bounds[r][j + 1]).
  const int64_t n_chunks = (std::max<int64_t>(a.cols, 1) + k_chunk - 1) / k_chunk;
  AlignedVector<int32_t> bounds(a.rows * (n_chunks + 1));
  const int64_t items = n_tiles * n_row_parts;
#pragma omp parallel if (parallel && items > 1)
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < a.rows; ++r) {
      const int32_t* idx = a.indices + a.start(r);
      const int32_t n = a.counts[r];
      int32_t* b = bounds.data() + r * (n_chunks + 1);
      chunk_bounds(idx, n, k_chunk, n_chunks, b);
    }
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t tile = item / n_row_parts, part = item % n_row_parts;
      int64_t c0, width;
      tile_columns(tile, c0, width);
      const int64_t r0 = part * rows_per_part, r1 = std::min(a.rows, r0 + rows_per_part);
      for (int64_t j = 0; j < n_chunks; ++j) {
        const bool first = j == 0;
        for (int64_t r = r0; r < r1; ++r) {
          const int32_t* b = bounds.data() + r * (n_chunks + 1);
          const int32_t begin = b[j], end = b[j + 1];
          T* o = out + r * ldo + c0;
          if (!first && begin == end) continue;
          const int64_t start = a.start(r);
          const T* init = first ? (accumulate ? o : (bias ? bias + c0 : nullptr)) : o;
          const T* w = kWeighted ? values + start + begin : nullptr;
          sum_rows<T, kWeighted>(a.indices + start + begin, w, end - begin, M + c0, ldm, init, o, width);
        }
      }
    }
  }
}

// The counting sort behind transpose_binary_rows and transpose_sparse_rows; values (per part,
// laid out like its indices) and col_values travel with the indices when given.
template <typename T>
int64_t transpose_rows(const BinaryRows* parts, const T* const* values, const int64_t* row_offsets, int n_parts,
                       int64_t cols, int32_t* col_indices, T* col_values, int32_t* col_counts, int64_t* col_starts) {
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
      const int64_t start = a.start(r);
      const int32_t* idx = a.indices + start;
      const int32_t row = static_cast<int32_t>(row_offsets[p] + r);
      if (values != nullptr) {
        const T* val = values[p] + start;
        for (int32_t k = 0; k < a.counts[r]; ++k) {
          const int64_t at = cursor[idx[k]]++;
          col_indices[at] = row;
          col_values[at] = val[k];
        }
      } else {
        for (int32_t k = 0; k < a.counts[r]; ++k) col_indices[cursor[idx[k]]++] = row;
      }
    }
  }
  return total;
}

}  // namespace

template <typename T>
void binary_matmul(const BinaryRows& a, const T* M, int64_t ldm, int64_t N, const T* bias, T* out, int64_t ldo,
                   bool accumulate, const T* panels) {
  rows_matmul<T, false>(a, nullptr, M, ldm, N, bias, out, ldo, accumulate, panels);
}

template <typename T> int64_t table_panel_elements(int64_t K, int64_t N) {
  constexpr int64_t L = Simd<T>::kLanes;
  return (N + L - 1) / L * K * L;
}

template <typename T> void pack_table_panels(const T* M, int64_t ldm, int64_t K, int64_t N, T* panels) {
  constexpr int64_t L = Simd<T>::kLanes;
  const int64_t n_panels = (N + L - 1) / L;
#pragma omp parallel for schedule(static) if (K * N >= kParallelMinElements)
  for (int64_t t = 0; t < n_panels; ++t) {
    const int64_t c0 = t * L, width = std::min(L, N - c0);
    for (int64_t k = 0; k < K; ++k) {
      T* dst = panels + (t * K + k) * L;
      std::copy(M + k * ldm + c0, M + k * ldm + c0 + width, dst);
      std::fill(dst + width, dst + L, T(0));
    }
  }
}

template <typename T>
void sparse_matmul(const BinaryRows& a, const T* values, const T* M, int64_t ldm, int64_t N, const T* bias, T* out,
                   int64_t ldo, bool accumulate) {
  rows_matmul<T, true>(a, values, M, ldm, N, bias, out, ldo, accumulate);
}

void set_binary_max_density(double density) { g_binary_max_density.store(density, std::memory_order_relaxed); }
double binary_max_density() { return g_binary_max_density.load(std::memory_order_relaxed); }
void set_binary_tables(bool enabled) { g_binary_tables.store(enabled, std::memory_order_relaxed); }
int binary_table_bits(int64_t rows, int64_t K, int64_t nnz) { return table_group_bits(rows, K, nnz); }

bool binary_product_pays(int64_t rows, int64_t K, int64_t N, int64_t nnz, bool is_double) {
  if (rows == 0 || K == 0 || N == 0) return true;
  const double density = static_cast<double>(nnz) / (static_cast<double>(rows) * static_cast<double>(K));
  (void)N;
  (void)is_double;
  const double limit = g_binary_max_density.load(std::memory_order_relaxed);
  return limit > 0.0 && density <= limit;
}

template <typename T>
int64_t binary_rows_from_dense(const T* x, int64_t rows, int64_t cols, int64_t ld, int32_t* indices, int32_t* counts,
                               int64_t stride) {
  int64_t nnz = 0;
  bool binary = true;
#pragma omp parallel for schedule(static) reduction(+ : nnz) reduction(&& : binary) if (rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    // One pass: the row is listed and checked together (it usually comes from memory).
    bool row_binary = true;
    counts[r] = append_nonzero_columns<true>(x + r * ld, cols, 0, indices + r * stride, 0, &row_binary);
    binary = binary && row_binary;
    nnz += counts[r];
  }
  return binary ? nnz : -1;
}

int64_t transpose_binary_rows(const BinaryRows* parts, const int64_t* row_offsets, int n_parts, int64_t cols,
                              int32_t* col_indices, int32_t* col_counts, int64_t* col_starts) {
  return transpose_rows<float>(parts, nullptr, row_offsets, n_parts, cols, col_indices, nullptr, col_counts,
                               col_starts);
}

template <typename T>
int64_t transpose_sparse_rows(const BinaryRows& a, const T* values, int32_t* col_indices, T* col_values,
                              int32_t* col_counts, int64_t* col_starts) {
  const int64_t offset = 0;
  return transpose_rows<T>(&a, &values, &offset, 1, a.cols, col_indices, col_values, col_counts, col_starts);
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
  template void binary_matmul<T>(const BinaryRows&, const T*, int64_t, int64_t, const T*, T*, int64_t, bool,       \
                                  const T*);                                                                      \
  template int64_t table_panel_elements<T>(int64_t, int64_t);                                                     \
  template void pack_table_panels<T>(const T*, int64_t, int64_t, int64_t, T*);                                    \
  template int64_t binary_rows_from_dense<T>(const T*, int64_t, int64_t, int64_t, int32_t*, int32_t*, int64_t); \
  template void transpose_matrix<T>(const T*, int64_t, int64_t, int64_t, T*, int64_t);                           \
  template void sparse_matmul<T>(const BinaryRows&, const T*, const T*, int64_t, int64_t, const T*, T*, int64_t,   \
                                  bool);                                                                          \
  template int64_t transpose_sparse_rows<T>(const BinaryRows&, const T*, int32_t*, T*, int32_t*, int64_t*);
FASTGEN_INSTANTIATE(float)
FASTGEN_INSTANTIATE(double)
#undef FASTGEN_INSTANTIATE

}  // namespace cpu
}  // namespace fastgen

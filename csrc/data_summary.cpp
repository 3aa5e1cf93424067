// The estimators' checks of a data matrix in one pass: whether every value is finite, the range
// (for the warning about values outside [0, 1]) and the column sums (the base rates AIS starts
// from). NumPy needs four passes for the same (the finiteness check, min, max, sum over axis 0),
// each on one thread, a visible share of a short training run (docs/performance.md, "data
// summary").
#include <algorithm>
#include <limits>
#include <vector>

#include "fastgen.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {

namespace {
// Rows per block of the column sums: blocks are summed separately, then added in block order,
// so the sums do not depend on how the blocks were shared among threads.
constexpr int64_t kSummaryBlockRows = 256;

// Rows [r0, r1) into the running NaN/inf count and range, and (kSums) into sums [cols].
template <bool kSums, typename T>
void summarize_block(const T* x, int64_t r0, int64_t r1, int64_t cols, int64_t ld, int64_t& bad, T& lo, T& hi,
                     double* sums) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* row = x + r * ld;
#pragma omp simd reduction(+ : bad) reduction(min : lo) reduction(max : hi)
    for (int64_t c = 0; c < cols; ++c) {
      const T v = row[c];
      bad += (v - v != T(0)) ? 1 : 0;  // inf - inf and NaN - NaN are NaN
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      if constexpr (kSums) sums[c] += static_cast<double>(v);
    }
  }
}
}  // namespace

template <typename T>
DataSummary<T> summarize_rows(const T* x, int64_t rows, int64_t cols, int64_t ld, double* column_sums) {
  DataSummary<T> out{true, std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity()};
  if (column_sums != nullptr) std::fill(column_sums, column_sums + cols, 0.0);
  if (rows == 0 || cols == 0) return out;
  const int64_t blocks = (rows + kSummaryBlockRows - 1) / kSummaryBlockRows;
  std::vector<double> partial(column_sums != nullptr ? blocks * cols : 0);
  int64_t bad = 0;
  T lo = out.min, hi = out.max;
#pragma omp parallel for schedule(static) reduction(+ : bad) reduction(min : lo) reduction(max : hi) \
    if (rows * cols >= 4 * kParallelMinElements)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * kSummaryBlockRows, r1 = std::min(rows, r0 + kSummaryBlockRows);
    if (column_sums != nullptr) summarize_block<true>(x, r0, r1, cols, ld, bad, lo, hi, partial.data() + b * cols);
    else summarize_block<false>(x, r0, r1, cols, ld, bad, lo, hi, nullptr);
  }
  out.finite = bad == 0;
  out.min = lo;
  out.max = hi;
  if (column_sums != nullptr) {
    for (int64_t b = 0; b < blocks; ++b) {
      const double* sums = partial.data() + b * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) column_sums[c] += sums[c];
    }
  }
  return out;
}

template <typename T> bool all_finite(const T* x, int64_t n) {
  int64_t bad = 0;
#pragma omp parallel for simd reduction(+ : bad) schedule(static) if (n >= 8 * kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) bad += (x[i] - x[i] != T(0)) ? 1 : 0;  // inf - inf and NaN - NaN are NaN
  return bad == 0;
}

template bool all_finite<float>(const float*, int64_t);
template bool all_finite<double>(const double*, int64_t);
template DataSummary<float> summarize_rows<float>(const float*, int64_t, int64_t, int64_t, double*);
template DataSummary<double> summarize_rows<double>(const double*, int64_t, int64_t, int64_t, double*);

}  // namespace cpu
}  // namespace fastgen

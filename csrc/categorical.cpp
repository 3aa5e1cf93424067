// Categorical sampling from rows of logits (Gumbel-max on the Philox stream; the formula is in
// kernels/include/fastgen/categorical.h). A row's draw depends only on (seed, offset, row,
// its logits, temperature, top_k): OpenMP splits rows between threads and cannot change a bit.
#include <algorithm>
#include <functional>
#include <vector>

#include "fastgen.h"
#include "fastgen/categorical.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {

namespace {

// The index of the largest key over the columns admitted by `admit(c, x)`, one pass over the
// row: Philox words come chunk by chunk, element (r, c) reads word r * cols + c whether or not
// its column is admitted, so a column's uniform never depends on top_k.
template <typename T, typename Admit>
int64_t draw_row(const T* x, int64_t r, int64_t cols, T temperature, RandomStream s, Admit&& admit) {
  int64_t best = -1;
  T best_key = T(0);
  for_each_word_chunk(s, r * cols, (r + 1) * cols, [&](int64_t start, int64_t len, const uint32_t* w) {
    const int64_t c0 = start - r * cols;
    for (int64_t j = 0; j < len; ++j) {
      const int64_t c = c0 + j;
      if (!admit(c, x[c])) continue;
      const T key = gumbel_key(x[c], temperature, uniform01<T>(w[j]));
      if (best < 0 || key > best_key) {
        best = c;
        best_key = key;
      }
    }
  });
  return best;
}

}  // namespace

template <typename T> void sample_categorical(const CategoricalParams<T>& p) {
  const bool truncate = p.top_k > 0 && p.top_k < p.cols;
#pragma omp parallel if (p.rows * p.cols >= kParallelMinElements)
  {
    std::vector<T> buffer(truncate ? p.cols : 0);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < p.rows; ++r) {
      const T* x = p.logits + r * p.logits_stride;
      if (!truncate) {
        p.out[r] = draw_row(x, r, p.cols, p.temperature, p.stream, [](int64_t, T) { return true; });
        continue;
      }
      // Partial selection: buffer[k - 1] becomes the k-th largest value, buffer[0 : k - 1] hold
      // values >= it. Columns strictly above it are in; of those equal to it, the first
      // (k - #strictly above) in column order are in.
      std::copy(x, x + p.cols, buffer.begin());
      const int64_t k = p.top_k;
      std::nth_element(buffer.begin(), buffer.begin() + (k - 1), buffer.end(), std::greater<T>());
      const T kth = buffer[k - 1];
      int64_t above = 0;
      for (int64_t i = 0; i < k - 1; ++i) above += buffer[i] > kth;
      int64_t ties_left = k - above;
      p.out[r] = draw_row(x, r, p.cols, p.temperature, p.stream,
                          [&](int64_t, T v) { return in_top_k(v, kth, ties_left); });
    }
  }
}

template void sample_categorical<float>(const CategoricalParams<float>&);
template void sample_categorical<double>(const CategoricalParams<double>&);

}  // namespace cpu
}  // namespace fastgen

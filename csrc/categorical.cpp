// Categorical sampling from rows of logits (Gumbel-max on the Philox stream; the formula is in
// kernels/include/fastgen/categorical.h). A row's draw depends only on (seed, offset, row,
// its logits, temperature, top_k): OpenMP splits rows between threads and cannot change a bit.
#include <algorithm>
#include <functional>
#include <limits>
#include <tuple>
#include <utility>
#include <vector>

#include "fastgen.h"
#include "fastgen/categorical.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {

namespace {

// Rows of up to this many columns are drawn in blocks of whole rows: one Philox fill for the
// block, then per row a vectorised pass computing every column's key into a buffer and a scalar
// argmax over it. (The keys cost two logarithms each, which only a separate pass vectorises.)
constexpr int64_t kBlockWords = kChunk;

// The lowest column holding the largest key: a vectorised max, then a scan for its first
// occurrence (two short passes without the unpredictable branch of a running argmax). Keys are
// never NaN (finite logits give finite or +infinite keys), so the scan always stops.
template <typename T> int64_t first_argmax(const T* keys, int64_t cols) {
  T best = keys[0];
#pragma omp simd reduction(max : best)
  for (int64_t c = 1; c < cols; ++c) best = keys[c] > best ? keys[c] : best;
  int64_t c = 0;
  while (keys[c] != best) ++c;
  return c;
}

// Keys of the columns not admitted by `admit(c, x)` (called once per column, in column order)
// set to -infinity, which no admitted key (finite or +infinity) loses to.
template <typename T, typename Admit> void drop_unadmitted(const T* x, T* keys, int64_t c0, int64_t len, Admit&& admit) {
  for (int64_t j = 0; j < len; ++j)
    if (!admit(c0 + j, x[c0 + j])) keys[j] = -std::numeric_limits<T>::infinity();
}

// keys[c] = gumbel_key(x[c], temperature, uniform of words[c]), c < cols.
template <typename T> void gumbel_keys(const T* x, const uint32_t* words, int64_t cols, T temperature, T* keys) {
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) keys[c] = gumbel_key(x[c], temperature, uniform_open01<T>(words[c]));
}

// A row longer than a block: its keys chunk by chunk, the running argmax across chunks.
template <typename T, typename Admit>
int64_t draw_long_row(const T* x, int64_t r, int64_t cols, T temperature, RandomStream s, T* keys, Admit&& admit) {
  int64_t best = -1;
  T best_key = T(0);
  for_each_word_chunk(s, r * cols, (r + 1) * cols, [&](int64_t start, int64_t len, const uint32_t* w) {
    const int64_t c0 = start - r * cols;
    gumbel_keys(x + c0, w, len, temperature, keys);
    drop_unadmitted(x, keys, c0, len, admit);
    const int64_t j = first_argmax(keys, len);
    if (best < 0 || keys[j] > best_key) {
      best = c0 + j;
      best_key = keys[j];
    }
  });
  return best;
}

// The k-th largest value of the row and how many columns equal to it are admitted (scanning in
// column order): buffer[k - 1] becomes the k-th largest, buffer[0 : k - 1] hold values >= it.
template <typename T> std::pair<T, int64_t> top_k_threshold(const T* x, int64_t cols, int64_t k, T* buffer) {
  std::copy(x, x + cols, buffer);
  std::nth_element(buffer, buffer + (k - 1), buffer + cols, std::greater<T>());
  const T kth = buffer[k - 1];
  int64_t above = 0;
  for (int64_t i = 0; i < k - 1; ++i) above += buffer[i] > kth;
  return {kth, k - above};
}

}  // namespace

template <typename T> void sample_categorical(const CategoricalParams<T>& p) {
  if (p.rows == 0) return;
  const bool truncate = p.top_k > 0 && p.top_k < p.cols;
  const bool blocked = p.cols <= kBlockWords;
  const int64_t rows_per_block = blocked ? std::max<int64_t>(1, kBlockWords / p.cols) : 1;
  const int64_t n_blocks = (p.rows + rows_per_block - 1) / rows_per_block;
#pragma omp parallel if (p.rows * p.cols >= kParallelMinElements)
  {
    std::vector<T> buffer(truncate ? p.cols : 0);
    std::vector<T> keys(blocked ? kBlockWords : kChunk);
    alignas(64) uint32_t words[kBlockWords + 8];
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t r0 = b * rows_per_block, r1 = std::min(p.rows, r0 + rows_per_block);
      const uint32_t* w = nullptr;
      if (blocked) {  // the words of elements [r0 * cols, r1 * cols), one fill
        const int64_t first = r0 * p.cols, first_block = first >> 2, skip = first - (first_block << 2);
        philox_words(p.stream, static_cast<uint64_t>(first_block), (skip + (r1 - r0) * p.cols + 3) >> 2, words);
        w = words + skip;
        // Rows back to back in memory (the usual case): one long vector loop over the block's
        // keys instead of a short one, with its scalar remainder, per row.
        if (p.logits_stride == p.cols)
          gumbel_keys(p.logits + r0 * p.cols, w, (r1 - r0) * p.cols, p.temperature, keys.data());
      }
      for (int64_t r = r0; r < r1; ++r) {
        const T* x = p.logits + r * p.logits_stride;
        int64_t ties_left = 0;
        T kth = T(0);
        if (truncate) std::tie(kth, ties_left) = top_k_threshold(x, p.cols, p.top_k, buffer.data());
        auto admit = [&](int64_t, T v) { return in_top_k(v, kth, ties_left); };
        if (blocked) {
          T* row_keys = keys.data() + (r - r0) * p.cols;
          if (p.logits_stride != p.cols) gumbel_keys(x, w + (r - r0) * p.cols, p.cols, p.temperature, row_keys);
          if (truncate) drop_unadmitted(x, row_keys, 0, p.cols, admit);
          p.out[r] = first_argmax(row_keys, p.cols);
        } else if (!truncate) {
          p.out[r] = draw_long_row(x, r, p.cols, p.temperature, p.stream, keys.data(), [](int64_t, T) { return true; });
        } else {
          p.out[r] = draw_long_row(x, r, p.cols, p.temperature, p.stream, keys.data(), admit);
        }
      }
    }
  }
}

template void sample_categorical<float>(const CategoricalParams<float>&);
template void sample_categorical<double>(const CategoricalParams<double>&);

}  // namespace cpu
}  // namespace fastgen

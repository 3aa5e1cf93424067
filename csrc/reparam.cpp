// Fused reparameterised sampling with the KL term (forward) and its backward, which draws eps
// again from the counters instead of storing it. Formulas: kernels/include/fastgen/reparam.h.
//
// Both passes walk blocks of whole rows (about kChunk elements), so that one buffer fill of
// Philox normals serves several short rows: with latent sizes like 64 a per-row fill would run
// the vectorised generator on 16 Philox blocks at a time. Blocks are fixed by the shape alone
// (not by the thread count), and each row's KL is summed by one thread in one order, so the
// results do not depend on OMP_NUM_THREADS.
#include <algorithm>

#include "fastgen.h"
#include "fastgen/reparam.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {
namespace {

// Rows per block: as many whole rows as fit one normals chunk (kChunk - 3 leaves room for the
// up to 3 elements a block start can sit inside its Philox block), at least one.
int64_t rows_per_block(int64_t cols) { return std::max<int64_t>(1, (kChunk - 3) / cols); }

template <typename T> bool finite(T x) { return x - x == T(0); }  // inf - inf and NaN - NaN are NaN

// Visits the row segments of the flat element range [start, start + len) of a [rows, cols]
// array: fn(row, first column, count, offset of the segment inside the range).
template <typename Fn> inline void for_each_row_segment(int64_t start, int64_t len, int64_t cols, Fn&& fn) {
  for (int64_t pos = start, stop = start + len; pos < stop;) {
    const int64_t r = pos / cols, c0 = pos - r * cols;
    const int64_t n = std::min<int64_t>(cols - c0, stop - pos);
    fn(r, c0, n, pos - start);
    pos += n;
  }
}

}  // namespace

template <typename T> int reparameterize_forward(const ReparamParams<T>& p) {
  if (p.rows == 0 || p.cols == 0) {
    if (p.kl != nullptr) std::fill(p.kl, p.kl + p.rows, T(0));
    return 0;
  }
  const int64_t cols = p.cols, per_block = rows_per_block(cols);
  const int64_t n_blocks = (p.rows + per_block - 1) / per_block;
  int flags = 0;
#pragma omp parallel for schedule(static) reduction(| : flags) if (p.rows * cols >= kParallelMinElements)
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t r0 = b * per_block, r1 = std::min<int64_t>(p.rows, r0 + per_block);
    T kl[kChunk];  // the block's row sums (per_block <= kChunk)
    std::fill(kl, kl + (r1 - r0), T(0));
    const int64_t base = p.first_row * cols;  // stream index of element (0, 0)
    for_each_normal_chunk<T>(p.stream, base + r0 * cols, base + r1 * cols, [&](int64_t start, int64_t len, const T* eps) {
      for_each_row_segment(start - base, len, cols, [&](int64_t r, int64_t c0, int64_t n, int64_t at) {
        const T* m = p.mu + r * p.mu_stride + c0;
        const T* lv = p.logvar + r * p.logvar_stride + c0;
        const T* e = eps + at;
        T* out = p.z + r * cols + c0;
        // sigma goes through z: the second loop reads it back while it is in L1.
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) out[j] = reparam_std(lv[j]);
        T part = T(0);
#pragma omp simd reduction(+ : part)
        for (int64_t j = 0; j < n; ++j) {
          const T sigma = out[j];
          part += kl_standard_normal_term(m[j], lv[j], sigma);
          out[j] = gaussian_sample(m[j], sigma, e[j]);
        }
        kl[r - r0] += part;
      });
    });
    for (int64_t r = r0; r < r1; ++r) {
      if (p.kl != nullptr) p.kl[r] = kl[r - r0];
      // A NaN or infinity in mu or logvar always makes its term, and so the row's sum,
      // non-finite (mu^2, -logvar); a finite row sum clears the row. A non-finite sum may
      // also be an overflow of finite inputs, so the row is searched before anything is said.
      if (finite(kl[r - r0])) continue;
      const T* m = p.mu + r * p.mu_stride;
      const T* lv = p.logvar + r * p.logvar_stride;
      for (int64_t c = 0; c < cols; ++c) {
        if (!finite(m[c])) flags |= 1;
        if (!finite(lv[c])) flags |= 2;
      }
    }
  }
  return flags;
}

template <typename T> void reparameterize_backward(const ReparamBackwardParams<T>& p) {
  if (p.rows == 0 || p.cols == 0) return;
  const int64_t cols = p.cols, per_block = rows_per_block(cols);
  const int64_t n_blocks = (p.rows + per_block - 1) / per_block;
#pragma omp parallel for schedule(static) if (p.rows * cols >= kParallelMinElements)
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t r0 = b * per_block, r1 = std::min<int64_t>(p.rows, r0 + per_block);
    if (p.grad_z == nullptr) {  // only the KL term has a gradient: eps is not needed
      for (int64_t r = r0; r < r1; ++r) {
        const T g_kl = p.grad_kl ? p.grad_kl[r] : T(0);
        const T* mu = p.mu + r * cols;
        const T* logvar = p.logvar + r * cols;
        T* d_mu = p.grad_mu + r * cols;
        T* d_logvar = p.grad_logvar + r * cols;
#pragma omp simd
        for (int64_t c = 0; c < cols; ++c) {
          d_mu[c] = reparam_grad_mu(T(0), g_kl, mu[c]);
          d_logvar[c] = reparam_grad_logvar(T(0), g_kl, T(0), reparam_std(logvar[c]));
        }
      }
      continue;
    }
    const int64_t base = p.first_row * cols;
    for_each_normal_chunk<T>(p.stream, base + r0 * cols, base + r1 * cols, [&](int64_t start, int64_t len, const T* eps) {
      for_each_row_segment(start - base, len, cols, [&](int64_t r, int64_t c0, int64_t n, int64_t at) {
        const int64_t i0 = r * cols + c0;
        const T g_kl = p.grad_kl ? p.grad_kl[r] : T(0);
        const T* g_z = p.grad_z + i0;
        const T* mu = p.mu + i0;
        const T* logvar = p.logvar + i0;
        const T* e = eps + at;
        T* d_mu = p.grad_mu + i0;
        T* d_logvar = p.grad_logvar + i0;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) {
          d_mu[j] = reparam_grad_mu(g_z[j], g_kl, mu[j]);
          d_logvar[j] = reparam_grad_logvar(g_z[j], g_kl, e[j], reparam_std(logvar[j]));
        }
      });
    });
  }
}

template int reparameterize_forward<float>(const ReparamParams<float>&);
template int reparameterize_forward<double>(const ReparamParams<double>&);
template void reparameterize_backward<float>(const ReparamBackwardParams<float>&);
template void reparameterize_backward<double>(const ReparamBackwardParams<double>&);

}  // namespace cpu
}  // namespace fastgen

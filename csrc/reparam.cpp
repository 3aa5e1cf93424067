// Fused reparameterised sampling with the KL term (forward) and its backward, which draws eps
// again from the counters instead of storing it. Formulas: kernels/include/fastgen/reparam.h.
#include <algorithm>

#include "fastgen.h"
#include "fastgen/reparam.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {

template <typename T> void reparameterize_forward(const ReparamParams<T>& p) {
  if (p.rows == 0 || p.cols == 0) {
    if (p.kl != nullptr) std::fill(p.kl, p.kl + p.rows, T(0));
    return;
  }
  const int64_t cols = p.cols;
#pragma omp parallel for schedule(static) if (p.rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* mu = p.mu + r * p.mu_stride;
    const T* logvar = p.logvar + r * p.logvar_stride;
    T* z = p.z + r * cols;
    T kl = T(0);
    for_each_normal_chunk<T>(p.stream, r * cols, (r + 1) * cols, [&](int64_t start, int64_t len, const T* eps) {
      const int64_t c0 = start - r * cols;
      const T* m = mu + c0;
      const T* lv = logvar + c0;
      T* out = z + c0;
      // sigma goes through z: the second loop reads it back while it is in L1.
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) out[j] = reparam_std(lv[j]);
      T part = T(0);
#pragma omp simd reduction(+ : part)
      for (int64_t j = 0; j < len; ++j) {
        const T sigma = out[j];
        part += kl_standard_normal_term(m[j], lv[j], sigma);
        out[j] = gaussian_sample(m[j], sigma, eps[j]);
      }
      kl += part;
    });
    if (p.kl != nullptr) p.kl[r] = kl;
  }
}

template <typename T> void reparameterize_backward(const ReparamBackwardParams<T>& p) {
  if (p.rows == 0 || p.cols == 0) return;
  const int64_t cols = p.cols;
#pragma omp parallel for schedule(static) if (p.rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* mu = p.mu + r * cols;
    const T* logvar = p.logvar + r * cols;
    const T* g_z = p.grad_z ? p.grad_z + r * cols : nullptr;
    const T g_kl = p.grad_kl ? p.grad_kl[r] : T(0);
    T* d_mu = p.grad_mu + r * cols;
    T* d_logvar = p.grad_logvar + r * cols;
    if (g_z == nullptr) {  // only the KL term has a gradient: eps is not needed
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) {
        d_mu[c] = reparam_grad_mu(T(0), g_kl, mu[c]);
        d_logvar[c] = reparam_grad_logvar(T(0), g_kl, T(0), reparam_std(logvar[c]));
      }
      continue;
    }
    for_each_normal_chunk<T>(p.stream, r * cols, (r + 1) * cols, [&](int64_t start, int64_t len, const T* eps) {
      const int64_t c0 = start - r * cols;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        const int64_t c = c0 + j;
        d_mu[c] = reparam_grad_mu(g_z[c], g_kl, mu[c]);
        d_logvar[c] = reparam_grad_logvar(g_z[c], g_kl, eps[j], reparam_std(logvar[c]));
      }
    });
  }
}

template void reparameterize_forward<float>(const ReparamParams<float>&);
template void reparameterize_forward<double>(const ReparamParams<double>&);
template void reparameterize_backward<float>(const ReparamBackwardParams<float>&);
template void reparameterize_backward<double>(const ReparamBackwardParams<double>&);

}  // namespace cpu
}  // namespace fastgen

// CUDA kernels of the ELBO's Bernoulli / Gaussian log-likelihood reductions, forward and
// backward (csrc/elbo.cpp). Formulas: fastgen/elbo.h; parameter structs: fastgen/params/elbo.h.
// Compiled by NVRTC through CuPy (fastgen/_native/cuda_elbo.py).
//
// Each thread's work is a host+device function so that tests/cuda/harness_vae.cu replays it on
// the CPU and compares it with fastgen._C. The likelihood terms are per element, summed per row
// in double (as the CPU does) in a fixed order (each thread a strided partial, then a fixed
// shuffle tree): deterministic run to run. The CPU's vectorised sum uses another order, so sums
// agree to double rounding; for float32 input (float terms summed in double) the sums are
// exact, hence bitwise equal, whenever the terms' exponents span fewer than ~29 - log2(cols)
// bits.
#include "fastgen/elbo.h"
#include "fastgen/grid.h"
#include "fastgen/math.h"
#include "fastgen/params/elbo.h"

namespace fastgen {
namespace gpu {

// The double partial sum of row `row` over columns lane, lane + step, ... (one thread's share).
template <typename T> FG_HD double bernoulli_ll_partial(const BernoulliLikelihoodGpuParams& p, int64_t row,
                                                        int64_t lane, int64_t step) {
  const T* x = static_cast<const T*>(p.x) + row * p.cols;
  const T* l = static_cast<const T*>(p.logits) + row * p.cols;
  double sum = 0.0;
  for (int64_t c = lane; c < p.cols; c += step) sum += double(bernoulli_log_prob(x[c], l[c]));
  return sum;
}

template <typename T> FG_HD const T* gaussian_logvar_row(const GaussianLikelihoodGpuParams& p, int64_t row) {
  const T* v = static_cast<const T*>(p.logvar);
  return p.logvar_mode == 2 ? v + row * p.cols : v;
}

template <typename T> FG_HD double gaussian_ll_partial(const GaussianLikelihoodGpuParams& p, int64_t row,
                                                       int64_t lane, int64_t step) {
  const T* x = static_cast<const T*>(p.x) + row * p.cols;
  const T* m = static_cast<const T*>(p.mean) + row * p.cols;
  double sum = 0.0;
  if (p.logvar_mode == 0) {
    for (int64_t c = lane; c < p.cols; c += step) sum += double(gaussian_log_prob(x[c], m[c], T(0), T(1)));
  } else {
    const T* v = gaussian_logvar_row<T>(p, row);
    for (int64_t c = lane; c < p.cols; c += step)
      sum += double(gaussian_log_prob(x[c], m[c], v[c], fg_exp(-v[c])));
  }
  return sum;
}

template <typename T> FG_HD void bernoulli_ll_backward_unit(const BernoulliLikelihoodGpuParams& p, int64_t i) {
  const T* x = static_cast<const T*>(p.x);
  const T* l = static_cast<const T*>(p.logits);
  const T gr = static_cast<const T*>(p.grad)[i / p.cols];
  static_cast<T*>(p.out)[i] = gr * bernoulli_log_prob_grad_logit(x[i], l[i]);
  if (p.grad_x) static_cast<T*>(p.grad_x)[i] = gr * l[i];
}

// Per element: grad_mean, grad_x and (per-element log-variance) grad_logvar.
template <typename T> FG_HD void gaussian_ll_backward_unit(const GaussianLikelihoodGpuParams& p, int64_t i) {
  const int64_t row = i / p.cols, c = i - row * p.cols;
  const T* x = static_cast<const T*>(p.x);
  const T* m = static_cast<const T*>(p.mean);
  const T* v = p.logvar_mode == 0 ? nullptr : gaussian_logvar_row<T>(p, row);
  const T gr = static_cast<const T*>(p.grad)[row];
  const T precision = v != nullptr ? fg_exp(-v[c]) : T(1);
  const T d = gr * gaussian_log_prob_grad_mean(x[i], m[i], precision);
  static_cast<T*>(p.out)[i] = d;
  if (p.grad_x) static_cast<T*>(p.grad_x)[i] = -d;
  if (p.grad_logvar && p.logvar_mode == 2)
    static_cast<T*>(p.grad_logvar)[i] = gr * gaussian_log_prob_grad_logvar(x[i], m[i], precision);
}

// Per-feature log-variance: column c's gradient sums over the rows serially in double, the
// CPU's order, so it is bitwise the CPU's.
template <typename T> FG_HD void gaussian_ll_backward_column(const GaussianLikelihoodGpuParams& p, int64_t c) {
  const T* x = static_cast<const T*>(p.x);
  const T* m = static_cast<const T*>(p.mean);
  const T* v = static_cast<const T*>(p.logvar);
  const T* g = static_cast<const T*>(p.grad);
  double acc = 0.0;
  for (int64_t r = 0; r < p.rows; ++r) {
    const int64_t i = r * p.cols + c;
    acc += double(g[r] * gaussian_log_prob_grad_logvar(x[i], m[i], fg_exp(-v[c])));
  }
  static_cast<T*>(p.grad_logvar)[c] = T(acc);
}

}  // namespace gpu
}  // namespace fastgen

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FG_ELBO_KERNELS(T, SUFFIX)                                                                     \
  /* forward: one thread block per row (grid-stride over rows) */                                    \
  extern "C" __global__ void fg_bernoulli_ll_##SUFFIX(const fastgen::gpu::BernoulliLikelihoodGpuParams p) { \
    using namespace fastgen::gpu;                                                                        \
    for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {                                     \
      const double s = block_sum(bernoulli_ll_partial<T>(p, row, threadIdx.x, blockDim.x));              \
      if (threadIdx.x == 0) static_cast<T*>(p.out)[row] = T(s);                                          \
    }                                                                                                    \
  }                                                                                                      \
  extern "C" __global__ void fg_gaussian_ll_##SUFFIX(const fastgen::gpu::GaussianLikelihoodGpuParams p) { \
    using namespace fastgen::gpu;                                                                        \
    for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {                                     \
      const double s = block_sum(gaussian_ll_partial<T>(p, row, threadIdx.x, blockDim.x));               \
      if (threadIdx.x == 0) static_cast<T*>(p.out)[row] = T(s);                                          \
    }                                                                                                    \
  }                                                                                                      \
  extern "C" __global__ void fg_bernoulli_ll_backward_##SUFFIX(                                          \
      const fastgen::gpu::BernoulliLikelihoodGpuParams p) {                                              \
    FG_GRID_STRIDE_LOOP(i, p.rows * p.cols) fastgen::gpu::bernoulli_ll_backward_unit<T>(p, i);                  \
  }                                                                                                      \
  extern "C" __global__ void fg_gaussian_ll_backward_##SUFFIX(                                           \
      const fastgen::gpu::GaussianLikelihoodGpuParams p) {                                               \
    FG_GRID_STRIDE_LOOP(i, p.rows * p.cols) fastgen::gpu::gaussian_ll_backward_unit<T>(p, i);                   \
  }                                                                                                      \
  extern "C" __global__ void fg_gaussian_ll_backward_logvar_##SUFFIX(                                    \
      const fastgen::gpu::GaussianLikelihoodGpuParams p) {                                               \
    FG_GRID_STRIDE_LOOP(c, p.cols) fastgen::gpu::gaussian_ll_backward_column<T>(p, c);                          \
  }

FG_ELBO_KERNELS(float, f32)
FG_ELBO_KERNELS(double, f64)
#undef FG_ELBO_KERNELS
#endif

// CUDA kernels of the VAE ops: reparameterised sampling with the KL term (forward and backward,
// csrc/reparam.cpp) and the ELBO's Bernoulli / Gaussian log-likelihood reductions (forward and
// backward, csrc/elbo.cpp). Formulas: fastgen/reparam.h, fastgen/elbo.h; parameter structs:
// fastgen/gpu_params_vae.h. Compiled by NVRTC through CuPy (fastgen/_cuda_vae.py).
//
// Each thread's work is a host+device function so that tests/cuda/harness_vae.cu replays it on
// the CPU and compares it with fastgen._C:
//  * reparam_forward_block: the elements of one Philox block that lie in one row (a row's
//    elements r * cols .. r * cols + cols - 1 start mid-block unless cols % 4 == 0, so the
//    boundary block is evaluated by both rows, each writing its own elements). eps of element i
//    is normal (i % 4) of Philox block (i / 4) -- csrc's mapping -- so z is bitwise the CPU's.
//  * reparam_backward_block: one Philox block of the flat [rows, cols] array (bitwise the CPU).
//  * the likelihood terms: per-element, summed per row in double (as the CPU does) in a fixed
//    order (each thread a strided partial, then a fixed shuffle tree): deterministic run to run.
//    The CPU's vectorised sum uses another order, so sums agree to double rounding; for float32
//    input (float terms summed in double) the sums are exact, hence bitwise equal, whenever the
//    terms' exponents span fewer than ~29 - log2(cols) bits.
#include "fastgen/elbo.h"
#include "fastgen/gpu_params_vae.h"
#include "fastgen/math.h"
#include "fastgen/philox.h"
#include "fastgen/reparam.h"
#include "fastgen/sampling.h"

namespace fastgen {
namespace gpu {

// ---- reparameterisation ----------------------------------------------------------------------
// Philox blocks [first, end) overlapping row `row`.
FG_HD int64_t reparam_first_block(int64_t row, int64_t cols) { return (row * cols) / 4; }
FG_HD int64_t reparam_end_block(int64_t row, int64_t cols) { return ((row + 1) * cols + 3) / 4; }

// Writes z for the elements of Philox block `block` inside row `row`; returns their KL terms'
// sum (in T, like the CPU's per-row accumulator).
template <typename T> FG_HD T reparam_forward_block(const ReparamGpuParams& p, int64_t row, int64_t block) {
  const Philox4 r = stream_block(p.stream, static_cast<uint64_t>(block));
  T eps[4];
  normals_from_block(r, eps);
  const T* mu = static_cast<const T*>(p.mu) + row * p.mu_stride;
  const T* logvar = static_cast<const T*>(p.logvar) + row * p.logvar_stride;
  T* z = static_cast<T*>(p.z);
  const int64_t first = row * p.cols, last = first + p.cols;
  T kl = T(0);
  for (int lane = 0; lane < 4; ++lane) {
    const int64_t i = 4 * block + lane;
    if (i < first || i >= last) continue;
    const int64_t c = i - first;
    const T m = mu[c], lv = logvar[c];
    const T sigma = reparam_std(lv);
    kl += kl_standard_normal_term(m, lv, sigma);
    z[i] = gaussian_sample(m, sigma, eps[lane]);
  }
  return kl;
}

template <typename T> FG_HD void reparam_backward_block(const ReparamBackwardGpuParams& p, int64_t block) {
  const int64_t total = p.rows * p.cols;
  const T* g_z = static_cast<const T*>(p.grad_z);
  const T* g_kl = static_cast<const T*>(p.grad_kl);
  const T* mu = static_cast<const T*>(p.mu);
  const T* logvar = static_cast<const T*>(p.logvar);
  T* d_mu = static_cast<T*>(p.grad_mu);
  T* d_logvar = static_cast<T*>(p.grad_logvar);
  T eps[4] = {T(0), T(0), T(0), T(0)};
  // Without a gradient for z, eps is not needed (the CPU skips it too; its value is then 0).
  if (g_z) normals_from_block(stream_block(p.stream, static_cast<uint64_t>(block)), eps);
  for (int lane = 0; lane < 4; ++lane) {
    const int64_t i = 4 * block + lane;
    if (i >= total) break;
    const T gz = g_z ? g_z[i] : T(0);
    const T gk = g_kl ? g_kl[i / p.cols] : T(0);
    d_mu[i] = reparam_grad_mu(gz, gk, mu[i]);
    d_logvar[i] = reparam_grad_logvar(gz, gk, eps[lane], reparam_std(logvar[i]));
  }
}

// ---- likelihoods -----------------------------------------------------------------------------
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
namespace fastgen {
namespace gpu {

// Sum over a warp by a fixed shuffle tree: lane 0 ends with the total, the same bits every run.
template <typename S> __device__ __forceinline__ S warp_sum(S v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

// Sum over a thread block (blockDim.x a multiple of 32, at most 1024): warps first, then warp 0
// over the warps' sums; thread 0 ends with the total. Every thread of the block must call it.
__device__ __forceinline__ double block_sum(double v) {
  __shared__ double warp_sums[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // warp_sums may still be read by the previous call's warp 0
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) v = warp_sum(lane < warps ? warp_sums[lane] : 0.0);
  return v;
}

}  // namespace gpu
}  // namespace fastgen

#define FG_FLAT_LOOP(i, count)                                                                \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (count);  \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// Reparameterisation forward: one warp per row (grid-stride over rows), the lanes over the
// row's Philox blocks; the KL partials meet in warp_sum.
#define FG_VAE_KERNELS(T, SUFFIX)                                                                        \
  extern "C" __global__ void fg_reparam_forward_##SUFFIX(const fastgen::gpu::ReparamGpuParams p) {       \
    using namespace fastgen::gpu;                                                                        \
    const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);                          \
    const int lane = threadIdx.x & 31;                                                                   \
    for (int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);        \
         row < p.rows; row += warps) {                                                                   \
      T part = T(0);                                                                                     \
      const int64_t end = reparam_end_block(row, p.cols);                                                \
      for (int64_t b = reparam_first_block(row, p.cols) + lane; b < end; b += 32)                        \
        part += reparam_forward_block<T>(p, row, b);                                                     \
      part = warp_sum(part);                                                                             \
      if (p.kl && lane == 0) static_cast<T*>(p.kl)[row] = part;                                          \
    }                                                                                                    \
  }                                                                                                      \
  extern "C" __global__ void fg_reparam_backward_##SUFFIX(const fastgen::gpu::ReparamBackwardGpuParams p) { \
    FG_FLAT_LOOP(block, (p.rows * p.cols + 3) / 4) fastgen::gpu::reparam_backward_block<T>(p, block);    \
  }                                                                                                      \
  /* likelihoods: one thread block per row (grid-stride over rows) */                                    \
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
    FG_FLAT_LOOP(i, p.rows * p.cols) fastgen::gpu::bernoulli_ll_backward_unit<T>(p, i);                  \
  }                                                                                                      \
  extern "C" __global__ void fg_gaussian_ll_backward_##SUFFIX(                                           \
      const fastgen::gpu::GaussianLikelihoodGpuParams p) {                                               \
    FG_FLAT_LOOP(i, p.rows * p.cols) fastgen::gpu::gaussian_ll_backward_unit<T>(p, i);                   \
  }                                                                                                      \
  extern "C" __global__ void fg_gaussian_ll_backward_logvar_##SUFFIX(                                    \
      const fastgen::gpu::GaussianLikelihoodGpuParams p) {                                               \
    FG_FLAT_LOOP(c, p.cols) fastgen::gpu::gaussian_ll_backward_column<T>(p, c);                          \
  }

FG_VAE_KERNELS(float, f32)
FG_VAE_KERNELS(double, f64)
#undef FG_VAE_KERNELS
#undef FG_FLAT_LOOP
#endif

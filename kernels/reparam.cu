// CUDA kernels of the reparameterised Gaussian sample with its KL term, forward and backward
// (csrc/reparam.cpp). Formulas: fastgen/reparam.h; parameter structs: fastgen/params/reparam.h.
// Compiled by NVRTC through CuPy (fastgen/_native/cuda_reparam.py).
//
// Each thread's work is a host+device function so that tests/cuda/harness_vae.cu replays it on
// the CPU and compares it with fastgen._C:
//  * reparam_forward_block: the elements of one Philox block that lie in one row (a row's
//    elements g * cols .. g * cols + cols - 1, g = first_row + r its stream row, start mid-block
//    unless cols % 4 == 0, so the boundary block is evaluated by both rows, each writing its own
//    elements). eps of stream element i is normal (i % 4) of Philox block (i / 4) -- csrc's
//    mapping -- so z is bitwise the CPU's.
//  * reparam_backward_block: one Philox block of the stream range of the [rows, cols] array,
//    elements first_row * cols .. (first_row + rows) * cols - 1 (bitwise the CPU).
#include "fastgen/grid.h"
#include "fastgen/math.h"
#include "fastgen/params/reparam.h"
#include "fastgen/philox.h"
#include "fastgen/reparam.h"
#include "fastgen/sampling.h"

namespace fastgen {
namespace gpu {

// Philox blocks [first, end) overlapping stream row `row` (first_row + the array's row).
FG_HD int64_t reparam_first_block(int64_t row, int64_t cols) { return (row * cols) / 4; }
FG_HD int64_t reparam_end_block(int64_t row, int64_t cols) { return ((row + 1) * cols + 3) / 4; }

// Writes z for the elements of Philox block `block` inside row `row` of the array (stream row
// first_row + row); returns their KL terms' sum (in T, like the CPU's per-row accumulator).
template <typename T> FG_HD T reparam_forward_block(const ReparamGpuParams& p, int64_t row, int64_t block) {
  const Philox4 r = stream_block(p.stream, static_cast<uint64_t>(block));
  T eps[4];
  normals_from_block(r, eps);
  const T* mu = static_cast<const T*>(p.mu) + row * p.mu_stride;
  const T* logvar = static_cast<const T*>(p.logvar) + row * p.logvar_stride;
  T* z = static_cast<T*>(p.z) + row * p.cols;
  const int64_t first = (p.first_row + row) * p.cols, last = first + p.cols;  // stream indices of the row
  T kl = T(0);
  for (int lane = 0; lane < 4; ++lane) {
    const int64_t i = 4 * block + lane;
    if (i < first || i >= last) continue;
    const int64_t c = i - first;
    const T m = mu[c], lv = logvar[c];
    const T sigma = reparam_std(lv);
    kl += kl_standard_normal_term(m, lv, sigma);
    z[c] = gaussian_sample(m, sigma, eps[lane]);
  }
  return kl;
}

// Blocks [first, end) of the stream range of the array; `block` counts from the first.
FG_HD int64_t reparam_backward_first_block(const ReparamBackwardGpuParams& p) { return (p.first_row * p.cols) / 4; }
FG_HD int64_t reparam_backward_blocks(const ReparamBackwardGpuParams& p) {
  return ((p.first_row + p.rows) * p.cols + 3) / 4 - reparam_backward_first_block(p);
}

template <typename T> FG_HD void reparam_backward_block(const ReparamBackwardGpuParams& p, int64_t block) {
  const int64_t total = p.rows * p.cols, base = p.first_row * p.cols;
  block += reparam_backward_first_block(p);
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
    const int64_t i = 4 * block + lane - base;  // the array's element of this lane
    if (i < 0) continue;
    if (i >= total) break;
    const T gz = g_z ? g_z[i] : T(0);
    const T gk = g_kl ? g_kl[i / p.cols] : T(0);
    d_mu[i] = reparam_grad_mu(gz, gk, mu[i]);
    d_logvar[i] = reparam_grad_logvar(gz, gk, eps[lane], reparam_std(logvar[i]));
  }
}

}  // namespace gpu
}  // namespace fastgen

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
// Forward: one warp per row (grid-stride over rows), the lanes over the row's Philox blocks; the
// KL partials meet in warp_sum.
#define FG_REPARAM_KERNELS(T, SUFFIX)                                                                        \
  extern "C" __global__ void fg_reparam_forward_##SUFFIX(const fastgen::gpu::ReparamGpuParams p) {       \
    using namespace fastgen::gpu;                                                                        \
    const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);                          \
    const int lane = threadIdx.x & 31;                                                                   \
    for (int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);        \
         row < p.rows; row += warps) {                                                                   \
      T part = T(0);                                                                                     \
      const int64_t end = reparam_end_block(p.first_row + row, p.cols);                                  \
      for (int64_t b = reparam_first_block(p.first_row + row, p.cols) + lane; b < end; b += 32)          \
        part += reparam_forward_block<T>(p, row, b);                                                     \
      part = warp_sum(part);                                                                             \
      if (p.kl && lane == 0) static_cast<T*>(p.kl)[row] = part;                                          \
    }                                                                                                    \
  }                                                                                                      \
  extern "C" __global__ void fg_reparam_backward_##SUFFIX(const fastgen::gpu::ReparamBackwardGpuParams p) { \
    FG_GRID_STRIDE_LOOP(block, reparam_backward_blocks(p))                                               \
    fastgen::gpu::reparam_backward_block<T>(p, block);                                                   \
  }

FG_REPARAM_KERNELS(float, f32)
FG_REPARAM_KERNELS(double, f64)
#undef FG_REPARAM_KERNELS
#endif

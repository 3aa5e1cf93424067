// CUDA sampling kernels: raw Philox words, uniforms, normals, the fused bias + sigmoid +
// Bernoulli draw and the Gaussian draw, and the write of a stream buffer that replayed CUDA
// graphs read their offset from. Compiled at run time by NVRTC through CuPy
// (fastgen/_native/cuda_sampling.py) with -I kernels/include and --fmad=false, and checked with nvcc in the
// test suite.
//
// Work split: thread t owns Philox block t, i.e. flat elements 4t .. 4t+3 of the call, so one
// Philox4x32-10 evaluation feeds four elements, as in csrc/ (element i reads lane i % 4 of block
// i / 4). Each block's work is a host+device function (`*_block`) so that a host program can run
// the very same code on the CPU (tests/cuda/harness.cu) and check it bitwise against fastgen._C.
#include "fastgen/grid.h"
#include "fastgen/math.h"
#include "fastgen/params/sampling.h"
#include "fastgen/params/stream.h"
#include "fastgen/philox.h"
#include "fastgen/sampling.h"

namespace fastgen {
namespace gpu {

// ---- fills ---------------------------------------------------------------------------------
FG_HD void fill_bits_block(const FillParams& p, int64_t block) {
  const Philox4 r = stream_block(p.stream, static_cast<uint64_t>(block));
  uint32_t* out = static_cast<uint32_t*>(p.out);
  for (int lane = 0; lane < 4; ++lane) {
    const int64_t i = 4 * block + lane;
    if (i < p.n) out[i] = r.v[lane];
  }
}

template <typename T> FG_HD void fill_uniform_block(const FillParams& p, int64_t block) {
  const Philox4 r = stream_block(p.stream, static_cast<uint64_t>(block));
  T* out = static_cast<T*>(p.out);
  for (int lane = 0; lane < 4; ++lane) {
    const int64_t i = 4 * block + lane;
    if (i < p.n) out[i] = uniform01<T>(r.v[lane]);
  }
}

template <typename T> FG_HD void fill_normal_block(const FillParams& p, int64_t block) {
  const Philox4 r = stream_block(p.stream, static_cast<uint64_t>(block));
  T z[4];
  normals_from_block(r, z);
  T* out = static_cast<T*>(p.out);
  for (int lane = 0; lane < 4; ++lane) {
    const int64_t i = 4 * block + lane;
    if (i < p.n) out[i] = z[lane];
  }
}

// ---- Bernoulli -----------------------------------------------------------------------------
// Same per-element formula as csrc/sampling.cpp: p = sigmoid(x + bias) (or x itself when it is a
// probability), state = u < p with u the element's uniform.
template <typename T> FG_HD void bernoulli_block(const BernoulliGpuParams& p, int64_t block) {
  const int64_t total = p.rows * p.cols;
  const T* in = static_cast<const T*>(p.input);
  const T* bias = static_cast<const T*>(p.bias);
  T* probs = static_cast<T*>(p.probs);
  T* states = static_cast<T*>(p.states);
  Philox4 r;
  if (states) r = stream_block(p.stream, static_cast<uint64_t>(block));
  for (int lane = 0; lane < 4; ++lane) {
    const int64_t i = 4 * block + lane;
    if (i >= total) break;
    const int64_t row = i / p.cols, col = i - row * p.cols;
    const T x = in[row * p.input_stride + col];
    T prob;
    if (p.from_logits) {
      prob = sigmoid(bias ? x + bias[col] : x);
    } else {
      prob = x;
    }
    if (probs) probs[row * p.probs_stride + col] = prob;
    if (!states) continue;
    if (p.clamp && p.clamp[row * p.clamp_stride + col]) continue;  // clamped: keeps its value
    states[row * p.states_stride + col] = bernoulli_state(prob, uniform01<T>(r.v[lane]));
  }
}

// ---- Gaussian ------------------------------------------------------------------------------
template <typename T> FG_HD void gaussian_block(const GaussianGpuParams& p, int64_t block) {
  const int64_t total = p.rows * p.cols;
  const Philox4 r = stream_block(p.stream, static_cast<uint64_t>(block));
  T z[4];
  normals_from_block(r, z);
  const T* mean = static_cast<const T*>(p.mean);
  const T* bias = static_cast<const T*>(p.bias);
  const T* sd = static_cast<const T*>(p.stddev);
  T* out = static_cast<T*>(p.out);
  const T sd_scalar = static_cast<T>(p.stddev_scalar);
  for (int lane = 0; lane < 4; ++lane) {
    const int64_t i = 4 * block + lane;
    if (i >= total) break;
    const int64_t row = i / p.cols, col = i - row * p.cols;
    // mean + bias first, then fma(sd, eps, m): the CPU's order of operations
    const T m = mean[row * p.mean_stride + col] + (bias ? bias[col] : T(0));
    out[row * p.out_stride + col] = gaussian_sample(m, sd ? sd[col] : sd_scalar, z[lane]);
  }
}

FG_HD int64_t blocks_for(int64_t n) { return (n + 3) / 4; }

}  // namespace gpu
}  // namespace fastgen

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
// {seed, offset} into a graph's stream buffer, ordered on the stream like the launches that read it.
extern "C" __global__ void fg_set_stream(const fastgen::gpu::SetStreamParams p) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    p.rng[0] = p.seed;
    p.rng[1] = p.offset;
  }
}

// Grid-stride loops over Philox blocks (thread t owns block t, t + grid size, ...).
extern "C" __global__ void fg_fill_bits(const fastgen::gpu::FillParams p) {
  FG_GRID_STRIDE_LOOP(block, fastgen::gpu::blocks_for(p.n)) fastgen::gpu::fill_bits_block(p, block);
}

#define FG_SAMPLING_KERNELS(T, SUFFIX)                                                            \
  extern "C" __global__ void fg_fill_uniform_##SUFFIX(const fastgen::gpu::FillParams p) {         \
    FG_GRID_STRIDE_LOOP(block, fastgen::gpu::blocks_for(p.n))                                     \
    fastgen::gpu::fill_uniform_block<T>(p, block);                                                \
  }                                                                                               \
  extern "C" __global__ void fg_fill_normal_##SUFFIX(const fastgen::gpu::FillParams p) {          \
    FG_GRID_STRIDE_LOOP(block, fastgen::gpu::blocks_for(p.n))                                     \
    fastgen::gpu::fill_normal_block<T>(p, block);                                                 \
  }                                                                                               \
  extern "C" __global__ void fg_bernoulli_##SUFFIX(const fastgen::gpu::BernoulliGpuParams p) {    \
    FG_GRID_STRIDE_LOOP(block, fastgen::gpu::blocks_for(p.rows * p.cols))                         \
    fastgen::gpu::bernoulli_block<T>(p, block);                                                   \
  }                                                                                               \
  extern "C" __global__ void fg_gaussian_##SUFFIX(const fastgen::gpu::GaussianGpuParams p) {      \
    FG_GRID_STRIDE_LOOP(block, fastgen::gpu::blocks_for(p.rows * p.cols))                         \
    fastgen::gpu::gaussian_block<T>(p, block);                                                    \
  }

FG_SAMPLING_KERNELS(float, f32)
FG_SAMPLING_KERNELS(double, f64)
#undef FG_SAMPLING_KERNELS
#endif

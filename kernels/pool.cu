// CUDA kernels of the pooling ops (csrc/pool.cpp): max pooling with the argmax, the plane
// scatter (max unpooling; max pooling's backward) and gather (max unpooling's backward), average
// unpooling and its adjoint. Images are [planes, H, W], planes = batch * channels, each plane
// contiguous; indices are int64 flat positions h * W + w in the input plane of the pooling.
// Parameter structs: fastgen/params/pool.h; the window scan: fastgen/pool.h (shared with the
// CPU). Each thread's work is a host+device `*_unit` function, replayed on the CPU by
// tests/cuda/harness_vae.cu.
//
// Bitwise agreement with the CPU: max pooling compares only (same window order: the first
// maximum wins, padding never does), gather and the unpooling copies move values, the average
// unpooling adjoint sums its block in the CPU's (row, column) order, and the accumulating
// scatter runs each plane serially in the CPU's order (see pool_scatter_add_plane).
#include "fastgen/grid.h"
#include "fastgen/params/pool.h"
#include "fastgen/pool.h"

namespace fastgen {
namespace gpu {

// Output element o = (plane, oh, ow) of max pooling.
template <typename T> FG_HD void max_pool_unit(const MaxPoolGpuParams& p, int64_t o) {
  const int64_t out_plane = p.out_h * p.out_w;
  const int64_t plane = o / out_plane, rest = o - plane * out_plane;
  const int64_t oh = rest / p.out_w, ow = rest - oh * p.out_w;
  const PoolMax<T> best = max_pool_window(static_cast<const T*>(p.in) + plane * p.in_h * p.in_w, p.in_h, p.in_w,
                                          oh * p.stride_h - p.pad_h, ow * p.stride_w - p.pad_w, p.kernel_h,
                                          p.kernel_w);
  static_cast<T*>(p.out)[o] = best.value;
  p.indices[o] = best.index;
}

// Assigning scatter (max unpooling), element i of src: dst must be zeroed first. Indices that
// repeat within a plane (never the case for max pooling's own indices with stride >= kernel)
// leave one of the values, not necessarily the CPU's last one.
template <typename T> FG_HD void scatter_assign_unit(const PlanesGpuParams& p, int64_t i) {
  const int64_t plane = i / p.src_plane;
  static_cast<T*>(p.dst)[plane * p.dst_plane + p.indices[i]] = static_cast<const T*>(p.src)[i];
}

// Accumulating scatter (max pooling's backward) of a whole plane, serially in the CPU's order:
// overlapping windows send several gradients to one input, and their sum must not depend on
// the schedule (atomics would). dst must be zeroed first.
template <typename T> FG_HD void scatter_add_plane(const PlanesGpuParams& p, int64_t plane) {
  const T* s = static_cast<const T*>(p.src) + plane * p.src_plane;
  const int64_t* idx = p.indices + plane * p.src_plane;
  T* d = static_cast<T*>(p.dst) + plane * p.dst_plane;
  for (int64_t i = 0; i < p.src_plane; ++i) d[idx[i]] += s[i];
}

// Gather, element i of dst: dst[i] = src_plane[indices[i]].
template <typename T> FG_HD void gather_unit(const PlanesGpuParams& p, int64_t i) {
  const int64_t plane = i / p.dst_plane;
  static_cast<T*>(p.dst)[i] = static_cast<const T*>(p.src)[plane * p.src_plane + p.indices[i]];
}

// Average unpooling, output element o of [planes, h kh, w kw].
template <typename T> FG_HD void avg_unpool_unit(const AvgUnpoolGpuParams& p, int64_t o) {
  const int64_t out_w = p.w * p.kernel_w, out_plane = p.h * p.kernel_h * out_w;
  const int64_t plane = o / out_plane, rest = o - plane * out_plane;
  const int64_t y = rest / out_w, x = rest - y * out_w;
  static_cast<T*>(p.out)[o] =
      static_cast<const T*>(p.in)[plane * p.h * p.w + (y / p.kernel_h) * p.w + x / p.kernel_w];
}

// Its adjoint, element o of [planes, h, w]: the block's sum from T(0) in (row, column) order.
template <typename T> FG_HD void avg_unpool_backward_unit(const AvgUnpoolGpuParams& p, int64_t o) {
  const int64_t out_w = p.w * p.kernel_w, plane_size = p.h * p.w;
  const int64_t plane = o / plane_size, rest = o - plane * plane_size;
  const int64_t i = rest / p.w, j = rest - i * p.w;
  const T* g = static_cast<const T*>(p.in) + plane * p.h * p.kernel_h * out_w;
  T sum = T(0);
  for (int64_t r = 0; r < p.kernel_h; ++r)
    for (int64_t c = 0; c < p.kernel_w; ++c) sum += g[(i * p.kernel_h + r) * out_w + j * p.kernel_w + c];
  static_cast<T*>(p.out)[o] = sum;
}

}  // namespace gpu
}  // namespace fastgen

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FG_POOL_KERNELS(T, SUFFIX)                                                                        \
  extern "C" __global__ void fg_max_pool2d_##SUFFIX(const fastgen::gpu::MaxPoolGpuParams p) {             \
    FG_GRID_STRIDE_LOOP(o, p.planes * p.out_h * p.out_w) fastgen::gpu::max_pool_unit<T>(p, o);                   \
  }                                                                                                       \
  extern "C" __global__ void fg_scatter_assign_##SUFFIX(const fastgen::gpu::PlanesGpuParams p) {          \
    FG_GRID_STRIDE_LOOP(i, p.planes * p.src_plane) fastgen::gpu::scatter_assign_unit<T>(p, i);                   \
  }                                                                                                       \
  extern "C" __global__ void fg_scatter_add_##SUFFIX(const fastgen::gpu::PlanesGpuParams p) {             \
    FG_GRID_STRIDE_LOOP(plane, p.planes) fastgen::gpu::scatter_add_plane<T>(p, plane);                           \
  }                                                                                                       \
  extern "C" __global__ void fg_gather_planes_##SUFFIX(const fastgen::gpu::PlanesGpuParams p) {           \
    FG_GRID_STRIDE_LOOP(i, p.planes * p.dst_plane) fastgen::gpu::gather_unit<T>(p, i);                           \
  }                                                                                                       \
  extern "C" __global__ void fg_avg_unpool2d_##SUFFIX(const fastgen::gpu::AvgUnpoolGpuParams p) {         \
    FG_GRID_STRIDE_LOOP(o, p.planes * p.h * p.kernel_h * p.w * p.kernel_w) fastgen::gpu::avg_unpool_unit<T>(p, o); \
  }                                                                                                       \
  extern "C" __global__ void fg_avg_unpool2d_backward_##SUFFIX(const fastgen::gpu::AvgUnpoolGpuParams p) { \
    FG_GRID_STRIDE_LOOP(o, p.planes * p.h * p.w) fastgen::gpu::avg_unpool_backward_unit<T>(p, o);                \
  }

FG_POOL_KERNELS(float, f32)
FG_POOL_KERNELS(double, f64)
#undef FG_POOL_KERNELS
#endif

// Max pooling that keeps the argmax, max unpooling, average unpooling, and their backward
// passes, over [planes, H, W] images (planes = batch * channels, each plane contiguous).
// Indices are flat positions h * W + w inside the input plane of the pooling (the layout
// torch's max_pool2d(return_indices=True) uses), so unpooling puts each value back in place.
// The max-pool window scan is fastgen/pool.h, shared with kernels/pool.cu.
#include <algorithm>

#include "fastgen.h"
#include "fastgen/pool.h"
#include "philox_cpu.h"  // kParallelMinElements

namespace fastgen {
namespace cpu {

template <typename T> void max_pool2d_forward(const PoolGeometry& p, const T* in, T* out, int64_t* indices) {
  const int64_t in_plane = p.in_h * p.in_w, out_plane = p.out_h * p.out_w;
#pragma omp parallel for schedule(static) if (p.planes * out_plane * p.kernel_h * p.kernel_w >= kParallelMinElements)
  for (int64_t plane = 0; plane < p.planes; ++plane) {
    const T* x = in + plane * in_plane;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const int64_t h0 = oh * p.stride_h - p.pad_h;
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        const PoolMax<T> best = max_pool_window(x, p.in_h, p.in_w, h0, ow * p.stride_w - p.pad_w, p.kernel_h,
                                                p.kernel_w);
        const int64_t o = plane * out_plane + oh * p.out_w + ow;
        out[o] = best.value;
        indices[o] = best.index;
      }
    }
  }
}

// Scatter: dst_plane[index] (+)= src for every pooled element of a plane. With accumulate
// (max pooling's backward: overlapping windows can pick the same input) the sums run in a
// fixed order, so the result does not depend on the thread count.
template <typename T>
void scatter_planes(const T* src, const int64_t* indices, int64_t planes, int64_t src_plane, T* dst,
                    int64_t dst_plane, bool accumulate) {
#pragma omp parallel for schedule(static) if (planes * (src_plane + dst_plane) >= kParallelMinElements)
  for (int64_t plane = 0; plane < planes; ++plane) {
    T* d = dst + plane * dst_plane;
    std::fill(d, d + dst_plane, T(0));
    const T* s = src + plane * src_plane;
    const int64_t* idx = indices + plane * src_plane;
    if (accumulate) {
      for (int64_t i = 0; i < src_plane; ++i) d[idx[i]] += s[i];
    } else {
      for (int64_t i = 0; i < src_plane; ++i) d[idx[i]] = s[i];
    }
  }
}

// dst[i] = src_plane[index[i]] (max unpooling's backward).
template <typename T>
void gather_planes(const T* src, int64_t src_plane, const int64_t* indices, int64_t planes, int64_t dst_plane, T* dst) {
#pragma omp parallel for schedule(static) if (planes * dst_plane >= kParallelMinElements)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* s = src + plane * src_plane;
    const int64_t* idx = indices + plane * dst_plane;
    T* d = dst + plane * dst_plane;
    for (int64_t i = 0; i < dst_plane; ++i) d[i] = s[idx[i]];
  }
}

// Average unpooling: every cell of the kh x kw block of input pixel (h, w) gets its value
// (so average pooling with the same window undoes it). out: [planes, H * kh, W * kw].
template <typename T> void avg_unpool2d_forward(const T* in, int64_t planes, int64_t h, int64_t w, int64_t kh, int64_t kw, T* out) {
  const int64_t out_w = w * kw;
#pragma omp parallel for schedule(static) if (planes * h * w * kh * kw >= kParallelMinElements)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* x = in + plane * h * w;
    T* y = out + plane * h * kh * out_w;
    for (int64_t i = 0; i < h; ++i) {
      T* row = y + i * kh * out_w;
      for (int64_t j = 0; j < w; ++j) std::fill(row + j * kw, row + (j + 1) * kw, x[i * w + j]);
      for (int64_t r = 1; r < kh; ++r) std::copy(row, row + out_w, row + r * out_w);
    }
  }
}

// Its adjoint: grad_in[h, w] = sum of grad_out over the block.
template <typename T> void avg_unpool2d_backward(const T* grad_out, int64_t planes, int64_t h, int64_t w, int64_t kh, int64_t kw, T* grad_in) {
  const int64_t out_w = w * kw;
#pragma omp parallel for schedule(static) if (planes * h * w * kh * kw >= kParallelMinElements)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* g = grad_out + plane * h * kh * out_w;
    T* d = grad_in + plane * h * w;
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        T sum = T(0);
        for (int64_t r = 0; r < kh; ++r)
          for (int64_t c = 0; c < kw; ++c) sum += g[(i * kh + r) * out_w + j * kw + c];
        d[i * w + j] = sum;
      }
  }
}

#define FASTGEN_INSTANTIATE(T)                                                                                   \
  template void max_pool2d_forward<T>(const PoolGeometry&, const T*, T*, int64_t*);                            \
  template void scatter_planes<T>(const T*, const int64_t*, int64_t, int64_t, T*, int64_t, bool);               \
  template void gather_planes<T>(const T*, int64_t, const int64_t*, int64_t, int64_t, T*);                      \
  template void avg_unpool2d_forward<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, T*);             \
  template void avg_unpool2d_backward<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, T*);
FASTGEN_INSTANTIATE(float)
FASTGEN_INSTANTIATE(double)
#undef FASTGEN_INSTANTIATE

}  // namespace cpu
}  // namespace fastgen

// Transposed convolution around one GEMM: cols = W^T @ X (BLAS, done by the caller) gives, for
// every input pixel, its kh x kw contributions to each output channel; the output pass below
// gathers, for every output pixel, the contributions that land on it, adds the bias and
// applies the activation, writing each output once. The backward's im2col gathers the
// gradient the other way. Formulas of the activations: kernels/include/fastgen/activation.h.
#include <algorithm>

#include "aligned.h"
#include "fastgen.h"
#include "fastgen/activation.h"
#include "philox_cpu.h"  // kParallelMinElements

namespace fastgen {
namespace cpu {

namespace {

// Images [n_begin, n_end) of the output from their cols, whose column (n - n_begin) * in_plane + pixel
// holds input pixel `pixel` of image n (row stride cols_ld).
template <typename T>
void output_images(const ConvTransposeGeometry& g, const T* cols, int64_t cols_ld, int64_t n_begin, int64_t n_end,
                   const T* bias, T* out_all, Activation act, T slope) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
#pragma omp parallel for collapse(2) schedule(static) if ((n_end - n_begin) * g.out_c * out_plane >= kParallelMinElements)
  for (int64_t n = n_begin; n < n_end; ++n) {
    for (int64_t co = 0; co < g.out_c; ++co) {
      T* out = out_all + (n * g.out_c + co) * out_plane;
      std::fill(out, out + out_plane, bias ? bias[co] : T(0));
      for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
        for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
          const T* src = cols + ((co * g.kernel_h + ky) * g.kernel_w + kx) * cols_ld + (n - n_begin) * in_plane;
          // oy = iy * stride - pad + ky for every input row iy whose oy lands inside the output
          for (int64_t iy = 0; iy < g.in_h; ++iy) {
            const int64_t oy = iy * g.stride_h - g.pad_h + ky;
            if (oy < 0 || oy >= g.out_h) continue;
            // ox = ix * stride - pad + kx inside [0, out_w): ix in [ix_begin, ix_end)
            const int64_t shift = g.pad_w - kx;  // ox = ix * stride - shift
            const int64_t last = g.out_w - 1 + shift;  // ix * stride <= last
            if (last < 0) continue;                     // (also keeps the division below a floor)
            const int64_t ix_begin = shift > 0 ? (shift + g.stride_w - 1) / g.stride_w : 0;
            const int64_t ix_end = std::min<int64_t>(g.in_w, last / g.stride_w + 1);
            const T* s = src + iy * g.in_w;
            T* o = out + oy * g.out_w - shift;
            for (int64_t ix = ix_begin; ix < ix_end; ++ix) o[ix * g.stride_w] += s[ix];
          }
        }
      }
      if (act != Activation::kNone) {
        for (int64_t i = 0; i < out_plane; ++i) out[i] = activate(act, out[i], slope);
      }
    }
  }
}

}  // namespace

// Output pixels fall into stride_h x stride_w phases (oy mod stride_h, ox mod stride_w); within
// a phase every pixel receives the same kernel taps, from input pixels that move one step per
// output step. So each (phase, tap) adds a contiguous stretch of a cols row to a strided
// stretch of an output row: no per-pixel tap search, and the plane stays in cache until the
// bias was added first and the activation is applied last.
template <typename T> void conv_transpose2d_output(const ConvTransposeParams<T>& p) {
  const ConvTransposeGeometry& g = p.geometry;
  output_images(g, p.cols, g.batch * g.in_h * g.in_w, 0, g.batch, p.bias, p.out, static_cast<Activation>(p.activation),
                p.slope);
}

template <typename T> void conv_transpose2d_forward(const ConvTransposeForwardParams<T>& p) {
  const ConvTransposeGeometry& g = p.geometry;
  if (g.batch == 0) return;
  const int64_t in_plane = g.in_h * g.in_w, rows = g.out_c * g.kernel_h * g.kernel_w;
  const int64_t chunk_elements = p.chunk_elements > 0 ? p.chunk_elements : (int64_t(1) << 20);
  const int64_t per_image = rows * in_plane;
  const int64_t nb = std::max<int64_t>(1, std::min<int64_t>(g.batch, chunk_elements / per_image));
  // Images with many pixels are multiplied one by one straight from x (each GEMM is wide
  // enough); small ones are packed as [in_c, images * pixels] so that one GEMM covers the chunk.
  const bool direct = in_plane >= 128 || nb == 1;
  AlignedVector<T> cols(static_cast<size_t>(rows * nb * in_plane));
  AlignedVector<T> packed(direct ? 0 : static_cast<size_t>(g.in_c * nb * in_plane));
  const Activation act = static_cast<Activation>(p.activation);
  for (int64_t n0 = 0; n0 < g.batch; n0 += nb) {
    const int64_t m = std::min<int64_t>(nb, g.batch - n0), ld = m * in_plane;
    if (direct) {
      for (int64_t j = 0; j < m; ++j) {
        gemm<T>(true, false, rows, in_plane, g.in_c, T(1), p.weight, rows, p.x + (n0 + j) * g.in_c * in_plane,
                in_plane, T(0), cols.data() + j * in_plane, ld);
      }
    } else {
      T* xp = packed.data();
      for (int64_t c = 0; c < g.in_c; ++c) {
        for (int64_t j = 0; j < m; ++j) {
          const T* src = p.x + ((n0 + j) * g.in_c + c) * in_plane;
          std::copy(src, src + in_plane, xp + c * ld + j * in_plane);
        }
      }
      gemm<T>(true, false, rows, ld, g.in_c, T(1), p.weight, rows, xp, ld, T(0), cols.data(), ld);
    }
    output_images(g, cols.data(), ld, n0, n0 + m, p.bias, p.out, act, p.slope);
  }
}

template <typename T> void conv_transpose2d_im2col(const ConvTransposeGeometry& g, const T* grad, T* cols) {
  const int64_t in_plane = g.in_h * g.in_w, cols_ld = g.batch * in_plane, out_plane = g.out_h * g.out_w;
  const int64_t rows = g.out_c * g.kernel_h * g.kernel_w;
#pragma omp parallel for schedule(static) if (rows * cols_ld >= kParallelMinElements)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t kx = row % g.kernel_w, ky = (row / g.kernel_w) % g.kernel_h, co = row / (g.kernel_w * g.kernel_h);
    T* c = cols + row * cols_ld;
    for (int64_t n = 0; n < g.batch; ++n) {
      const T* src = grad + (n * g.out_c + co) * out_plane;
      for (int64_t iy = 0; iy < g.in_h; ++iy) {
        const int64_t oy = iy * g.stride_h - g.pad_h + ky;
        T* dst = c + n * in_plane + iy * g.in_w;
        if (oy < 0 || oy >= g.out_h) {
          for (int64_t ix = 0; ix < g.in_w; ++ix) dst[ix] = T(0);
          continue;
        }
        for (int64_t ix = 0; ix < g.in_w; ++ix) {
          const int64_t ox = ix * g.stride_w - g.pad_w + kx;
          dst[ix] = (ox >= 0 && ox < g.out_w) ? src[oy * g.out_w + ox] : T(0);
        }
      }
    }
  }
}

template <typename T>
void activation_backward(const T* grad_out, const T* y, int64_t n, int activation, T slope, T* grad_in) {
  const Activation act = static_cast<Activation>(activation);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) grad_in[i] = grad_out[i] * activation_derivative_from_output(act, y[i], slope);
}

#define FASTGEN_INSTANTIATE(T)                                                                        \
  template void conv_transpose2d_output<T>(const ConvTransposeParams<T>&);                           \
  template void conv_transpose2d_forward<T>(const ConvTransposeForwardParams<T>&);                   \
  template void conv_transpose2d_im2col<T>(const ConvTransposeGeometry&, const T*, T*);              \
  template void activation_backward<T>(const T*, const T*, int64_t, int, T, T*);
FASTGEN_INSTANTIATE(float)
FASTGEN_INSTANTIATE(double)
#undef FASTGEN_INSTANTIATE

}  // namespace cpu
}  // namespace fastgen

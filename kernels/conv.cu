// CUDA kernels of the transposed convolution (csrc/conv.cpp): the output pass (cols -> out with
// the bias and the activation fused), the backward's im2col (gradient -> cols) and the
// activation's backward. The GEMMs around them (cols = W^T X forward; W cols and X cols^T
// backward) are cuBLAS calls made by the caller. Formulas of the activations:
// fastgen/activation.h; parameter structs: fastgen/params/conv.h. Each thread's work is a
// host+device `*_unit` function, replayed on the CPU by tests/cuda/harness_vae.cu.
//
// Layouts: x [batch, in_c, in_h, in_w]; cols [out_c kh kw, batch in_h in_w] (row
// (co kh + ky) kw + kx, column n in_h in_w + iy in_w + ix); out [batch, out_c, out_h, out_w] with
// oy = iy stride_h - pad_h + ky, ox = ix stride_w - pad_w + kx.
//
// Bitwise agreement with the CPU: the output pass gathers, for each output pixel, the bias and
// then the taps in (ky, kx) order -- the order in which the CPU's scatter adds them to that
// pixel -- so with the same cols the outputs are bitwise equal (cols themselves come from
// different GEMMs); im2col moves values; the activation backward is element-wise.
#include "fastgen/activation.h"
#include "fastgen/grid.h"
#include "fastgen/params/conv.h"

namespace fastgen {
namespace gpu {

// The input index i along one axis that output o receives from tap k (o = i stride - pad + k),
// or -1 when there is none.
FG_HD int64_t conv_transpose_source(int64_t o, int64_t k, int64_t stride, int64_t pad, int64_t in) {
  const int64_t t = o + pad - k;
  if (t < 0 || t % stride != 0) return -1;
  const int64_t i = t / stride;
  return i < in ? i : -1;
}

// Output element o of [batch, out_c, out_h, out_w].
template <typename T> FG_HD void conv_transpose_output_unit(const ConvTransposeGpuParams& p, int64_t o) {
  const int64_t out_plane = p.out_h * p.out_w, in_plane = p.in_h * p.in_w, ld = p.batch * in_plane;
  const int64_t nc = o / out_plane, rest = o - nc * out_plane;
  const int64_t n = nc / p.out_c, co = nc - n * p.out_c;
  const int64_t oy = rest / p.out_w, ox = rest - oy * p.out_w;
  const T* cols = static_cast<const T*>(p.cols);
  const T* bias = static_cast<const T*>(p.bias);
  T acc = bias ? bias[co] : T(0);
  for (int64_t ky = 0; ky < p.kernel_h; ++ky) {
    const int64_t iy = conv_transpose_source(oy, ky, p.stride_h, p.pad_h, p.in_h);
    if (iy < 0) continue;
    for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
      const int64_t ix = conv_transpose_source(ox, kx, p.stride_w, p.pad_w, p.in_w);
      if (ix < 0) continue;
      acc += cols[((co * p.kernel_h + ky) * p.kernel_w + kx) * ld + n * in_plane + iy * p.in_w + ix];
    }
  }
  const Activation act = static_cast<Activation>(p.activation);
  static_cast<T*>(p.out)[o] = act != Activation::kNone ? activate(act, acc, static_cast<T>(p.slope)) : acc;
}

// im2col element e of cols [out_c kh kw, batch in_h in_w], from the gradient in p.out.
template <typename T> FG_HD void conv_transpose_im2col_unit(const ConvTransposeGpuParams& p, int64_t e) {
  const int64_t in_plane = p.in_h * p.in_w, ld = p.batch * in_plane;
  const int64_t row = e / ld, col = e - row * ld;
  const int64_t kx = row % p.kernel_w, ky = (row / p.kernel_w) % p.kernel_h, co = row / (p.kernel_w * p.kernel_h);
  const int64_t n = col / in_plane, pix = col - n * in_plane;
  const int64_t iy = pix / p.in_w, ix = pix - iy * p.in_w;
  const int64_t oy = iy * p.stride_h - p.pad_h + ky, ox = ix * p.stride_w - p.pad_w + kx;
  const T* grad = static_cast<const T*>(p.out);
  static_cast<T*>(p.cols)[e] = (oy >= 0 && oy < p.out_h && ox >= 0 && ox < p.out_w)
                                   ? grad[((n * p.out_c + co) * p.out_h + oy) * p.out_w + ox]
                                   : T(0);
}

template <typename T> FG_HD void activation_backward_unit(const ActivationBackwardGpuParams& p, int64_t i) {
  const Activation act = static_cast<Activation>(p.activation);
  static_cast<T*>(p.grad_in)[i] = static_cast<const T*>(p.grad_out)[i] *
      activation_derivative_from_output(act, static_cast<const T*>(p.y)[i], static_cast<T>(p.slope));
}

}  // namespace gpu
}  // namespace fastgen

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FG_CONV_KERNELS(T, SUFFIX)                                                                          \
  extern "C" __global__ void fg_conv_transpose2d_output_##SUFFIX(const fastgen::gpu::ConvTransposeGpuParams p) { \
    FG_GRID_STRIDE_LOOP(o, p.batch * p.out_c * p.out_h * p.out_w) fastgen::gpu::conv_transpose_output_unit<T>(p, o); \
  }                                                                                                         \
  extern "C" __global__ void fg_conv_transpose2d_im2col_##SUFFIX(const fastgen::gpu::ConvTransposeGpuParams p) { \
    FG_GRID_STRIDE_LOOP(e, p.out_c * p.kernel_h * p.kernel_w * p.batch * p.in_h * p.in_w)                         \
      fastgen::gpu::conv_transpose_im2col_unit<T>(p, e);                                                    \
  }                                                                                                         \
  extern "C" __global__ void fg_activation_backward_##SUFFIX(const fastgen::gpu::ActivationBackwardGpuParams p) { \
    FG_GRID_STRIDE_LOOP(i, p.n) fastgen::gpu::activation_backward_unit<T>(p, i);                                   \
  }

FG_CONV_KERNELS(float, f32)
FG_CONV_KERNELS(double, f64)
#undef FG_CONV_KERNELS
#endif

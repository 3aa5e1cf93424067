// Params of the transposed convolution's kernels (kernels/conv.cu, csrc/conv.cpp); Python mirror:
// fastgen/_native/cuda_conv.py. Rules: params/stream.h.
#pragma once
#include "../common.h"

namespace fastgen {
namespace gpu {

// Transposed convolution x [batch, in_c, in_h, in_w] * weight [in_c, out_c, kh, kw]; cols =
// weight^T @ X is [out_c kh kw, batch in_h in_w] (cuBLAS, by the caller).
struct ConvTransposeGpuParams {
  void* cols;           // output pass: read; im2col: written
  const void* bias;     // [out_c] or nullptr (output pass only)
  void* out;            // output pass: written [batch, out_c, out_h, out_w]; im2col: the gradient, read
  int64_t batch, in_c, in_h, in_w, out_c, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
  int64_t activation;   // fastgen::Activation
  double slope;         // leaky_relu's negative slope, converted to T as the CPU's T(slope)
};

// grad_in = grad_out * act'(x), from the activation's output y (all [n]).
struct ActivationBackwardGpuParams {
  const void* grad_out;
  const void* y;
  void* grad_in;
  int64_t n;
  int64_t activation;
  double slope;
};

}  // namespace gpu
}  // namespace fastgen

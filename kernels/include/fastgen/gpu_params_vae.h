// Parameter structs of the VAE / autoencoder / DCGAN kernels (kernels/vae.cu, pool.cu, conv.cu),
// passed by value, one struct per launch. Same rules as gpu_params.h: every field is 8 bytes
// (pointers, int64_t, uint64_t, double), so there is no padding and fastgen/_cuda_vae.py mirrors
// each struct with a NumPy structured dtype; tests/cuda/test_cuda_vae_host.py compares the two
// layouts through tests/cuda/harness_vae.cu. Arrays are C-contiguous unless a stride is given.
#pragma once
#include "gpu_params.h"

namespace fastgen {
namespace gpu {

// ---- vae.cu: reparameterised sampling + KL (csrc/reparam.cpp) -------------------------------
// z[r, c] = mu + exp(logvar / 2) * eps with eps = normal number r * cols + c of the stream (one
// offset per call, exactly csrc's counter mapping); kl[r] = sum_c KL term (or kl == nullptr).
struct ReparamGpuParams {
  const void* mu;       // [rows, cols], row stride mu_stride
  const void* logvar;   // [rows, cols], row stride logvar_stride
  void* z;              // [rows, cols] contiguous
  void* kl;             // [rows] or nullptr
  int64_t rows, cols;
  int64_t mu_stride, logvar_stride;
  StreamParams stream;
};

// The backward: eps drawn again from the forward's stream, never stored.
struct ReparamBackwardGpuParams {
  const void* grad_z;   // [rows, cols] or nullptr (z unused: eps not drawn)
  const void* grad_kl;  // [rows] or nullptr
  const void* mu;       // [rows, cols]
  const void* logvar;   // [rows, cols]
  void* grad_mu;        // [rows, cols]
  void* grad_logvar;    // [rows, cols]
  int64_t rows, cols;
  StreamParams stream;
};

// ---- vae.cu: the ELBO's reconstruction terms (csrc/elbo.cpp) ---------------------------------
// Bernoulli: x, logits [rows, cols]. Forward: out[r] = sum_c bernoulli_log_prob (one thread block
// per row, double accumulation, fixed reduction tree). Backward: grad_logits = g[r] (x - sigmoid(l)),
// grad_x = g[r] l (or nullptr).
struct BernoulliLikelihoodGpuParams {
  const void* x;
  const void* logits;
  const void* grad;     // backward: [rows]
  void* out;            // forward: [rows]; backward: grad_logits [rows, cols]
  void* grad_x;         // backward: [rows, cols] or nullptr
  int64_t rows, cols;
};

// Gaussian: logvar per element (logvar_mode 2, [rows, cols]), per feature (1, [cols]) or absent (0).
struct GaussianLikelihoodGpuParams {
  const void* x;
  const void* mean;
  const void* logvar;   // see logvar_mode, or nullptr
  const void* grad;     // backward: [rows]
  void* out;            // forward: [rows]; backward: grad_mean [rows, cols]
  void* grad_logvar;    // backward: logvar's shape, or nullptr
  void* grad_x;         // backward: [rows, cols] or nullptr
  int64_t logvar_mode;
  int64_t rows, cols;
};

// ---- pool.cu (csrc/pool.cpp) -----------------------------------------------------------------
// Images [planes, H, W], each plane contiguous; indices are int64 flat positions h * W + w in the
// input plane of the pooling (torch's convention).
struct MaxPoolGpuParams {
  const void* in;       // [planes, in_h, in_w]
  void* out;            // [planes, out_h, out_w]
  int64_t* indices;     // [planes, out_h, out_w]
  int64_t planes, in_h, in_w, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

// scatter: dst [planes, dst_plane] = 0, then dst[plane][indices[i]] (+)= src[plane][i];
// gather: dst [planes, dst_plane] = src[plane][indices[plane][i]] (indices [planes, dst_plane]).
struct PlanesGpuParams {
  const void* src;
  const int64_t* indices;
  void* dst;
  int64_t planes, src_plane, dst_plane;
  int64_t accumulate;   // scatter: 0 assign (max unpooling), 1 add (max pooling's backward)
};

// Average unpooling [planes, h, w] -> [planes, h kh, w kw] and its adjoint (block sums).
struct AvgUnpoolGpuParams {
  const void* in;       // forward: [planes, h, w]; backward: the gradient [planes, h kh, w kw]
  void* out;            // forward: [planes, h kh, w kw]; backward: [planes, h, w]
  int64_t planes, h, w, kernel_h, kernel_w;   // h, w: the small (pooled) size
};

// ---- conv.cu (csrc/conv.cpp) -----------------------------------------------------------------
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

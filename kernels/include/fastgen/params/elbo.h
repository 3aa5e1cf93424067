// Params of the ELBO's reconstruction terms (kernels/elbo.cu, csrc/elbo.cpp); Python mirror:
// fastgen/_native/cuda_elbo.py. Rules: params/stream.h.
#pragma once
#include "../common.h"

namespace fastgen {
namespace gpu {

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

}  // namespace gpu
}  // namespace fastgen

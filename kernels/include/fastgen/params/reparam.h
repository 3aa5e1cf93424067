// Params of the reparameterised sample and its KL term (kernels/reparam.cu, csrc/reparam.cpp);
// Python mirror: fastgen/_native/cuda_reparam.py. Rules: params/stream.h.
#pragma once
#include "stream.h"

namespace fastgen {
namespace gpu {

// z[r, c] = mu + exp(logvar / 2) * eps with eps = normal number (first_row + r) * cols + c of the
// stream (one offset per call, exactly csrc's counter mapping); kl[r] = sum_c KL term (or kl == nullptr).
struct ReparamGpuParams {
  const void* mu;       // [rows, cols], row stride mu_stride
  const void* logvar;   // [rows, cols], row stride logvar_stride
  void* z;              // [rows, cols] contiguous
  void* kl;             // [rows] or nullptr
  int64_t rows, cols;
  int64_t mu_stride, logvar_stride;
  StreamParams stream;
  int64_t first_row;    // the rows' place in a larger batch (a data-parallel rank's share), else 0
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
  int64_t first_row;    // the forward's
};

}  // namespace gpu
}  // namespace fastgen

// Params of the fused multi-step Gibbs kernel (kernels/gibbs.cu); Python mirror:
// fastgen/_native/cuda_gibbs.py. Rules: params/stream.h.
#pragma once
#include "stream.h"

namespace fastgen {
namespace gpu {

// Whole k-step block-Gibbs chains for an RBM small enough that W fits in shared memory: one
// thread block per chain, every step on chip (see gibbs.cu).
struct GibbsFusedParams {
  const void* weights;  // [n_hidden, n_visible]
  const void* visible_bias;
  const void* hidden_bias;
  void* visible;        // [rows, n_visible] in: start, out: v_k (in place)
  const unsigned char* clamp;  // as BernoulliGpuParams, or nullptr
  int64_t rows, n_visible, n_hidden;
  int64_t visible_stride, clamp_stride;
  int64_t steps;
  StreamParams stream;  // step s: hidden at offset + 2 s, visible at offset + 2 s + 1
};

}  // namespace gpu
}  // namespace fastgen

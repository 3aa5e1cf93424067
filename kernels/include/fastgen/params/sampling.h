// Params of the stream fills and samplers (kernels/sampling.cu); Python mirror:
// fastgen/_native/cuda_sampling.py. Rules: params/stream.h.
#pragma once
#include "stream.h"

namespace fastgen {
namespace gpu {

// Raw words / uniforms / normals of elements 0..n-1 of one stream.
struct FillParams {
  void* out;            // [n] uint32 (bits) or T (uniform, normal)
  int64_t n;
  StreamParams stream;
};

// Fused bias + sigmoid + Bernoulli draw over a [rows, cols] matrix with row strides.
struct BernoulliGpuParams {
  const void* input;    // [rows, cols] logits (from_logits) or probabilities
  const void* bias;     // [cols] or nullptr
  void* probs;          // [rows, cols] sigmoid(input + bias), or nullptr
  void* states;         // [rows, cols] 0/1 states, or nullptr (then nothing is drawn)
  const unsigned char* clamp;  // [rows or 1, cols] nonzero: states[r, c] is left untouched; or nullptr
  int64_t rows, cols;
  int64_t input_stride, probs_stride, states_stride;
  int64_t clamp_stride;  // 0: one mask row shared by every row
  int64_t from_logits;   // 0 or 1
  StreamParams stream;
};

struct GaussianGpuParams {
  const void* mean;     // [rows, cols]
  const void* bias;     // [cols] or nullptr
  const void* stddev;   // [cols] or nullptr (then stddev_scalar)
  double stddev_scalar;
  void* out;            // [rows, cols]
  int64_t rows, cols;
  int64_t mean_stride, out_stride;
  StreamParams stream;
};

}  // namespace gpu
}  // namespace fastgen

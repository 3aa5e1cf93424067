// Parameter structs of the CUDA kernels in kernels/*.cu, passed by value (one struct per launch,
// like the CPU side's BernoulliParams & co.).
//
// Every field is 8 bytes wide (pointers, int64_t, uint64_t, double) so that the layout has no
// padding and the Python side (fastgen/_cuda.py) can mirror it with a plain NumPy structured
// dtype; tests/cuda/test_cuda_build.py compiles a host program that prints sizeof/offsetof of
// each struct and compares them with those dtypes. Scalars are double and converted to the
// kernel's T inside, which rounds exactly as the CPU's T(value) does.
//
// Random streams: a kernel draws from (seed, offset + rel) where (seed, offset) come from `rng`
// when it is set (a device array {seed, offset}, so that a captured CUDA graph can be replayed
// with a new offset written before each replay) and from the `seed` / `offset` fields otherwise;
// `rel` is the field `offset` when `rng` is set. Element (r, c) of a [rows, cols] call uses flat
// index r * cols + c, exactly like csrc/ (see philox.h for the counter layout).
#pragma once
#include "common.h"
#include "philox.h"

namespace fastgen {
namespace gpu {

struct StreamParams {
  const uint64_t* rng;  // device {seed, offset}, or nullptr to use the fields below
  uint64_t seed;
  uint64_t offset;      // absolute offset (rng == nullptr) or offset relative to rng[1]
};

FG_HD uint64_t stream_seed(const StreamParams& s) { return s.rng ? s.rng[0] : s.seed; }
FG_HD uint64_t stream_offset(const StreamParams& s) { return s.rng ? s.rng[1] + s.offset : s.offset; }
// Philox block `block` of the stream the params name.
FG_HD Philox4 stream_block(const StreamParams& s, uint64_t block) {
  return philox_block(stream_seed(s), stream_offset(s), block);
}

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

// velocity -= decay * param; param += velocity   (velocity already holds momentum v + lr grad),
// the CPU's apply_velocity in csrc/rbm.cpp.
struct VelocityParams {
  void* param;
  void* velocity;
  int64_t n;
  double decay;
};

// param += v with v = momentum * velocity + lr * (grad - weight_decay * param) stored back to
// velocity, or param += lr * (grad - weight_decay * param) without velocity: the CPU's
// sgd_momentum_update.
struct SgdParams {
  void* param;
  void* velocity;       // or nullptr
  const void* grad;
  int64_t n;
  double lr, momentum, weight_decay;
};

// Writes {seed, offset} into a device stream buffer from inside the launch sequence (a kernel
// rather than a host copy, so it is ordered on the stream like everything else).
struct SetStreamParams {
  uint64_t* rng;
  uint64_t seed, offset;
};

// Whole k-step block-Gibbs chains for an RBM small enough that W fits in shared memory: one
// thread block per chain, every step on chip (see rbm.cu).
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

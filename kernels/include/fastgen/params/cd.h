// Params of the CD/PCD epoch's parameter updates (kernels/cd.cu); Python mirror:
// fastgen/_native/cuda_cd.py. Rules: params/stream.h.
#pragma once
#include "../common.h"

namespace fastgen {
namespace gpu {

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

}  // namespace gpu
}  // namespace fastgen

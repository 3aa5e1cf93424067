// CUDA kernels of the CD/PCD epoch that are not GEMMs (those go to cuBLAS from
// fastgen/_native/cuda_cd.py): the momentum / weight-decay parameter updates of csrc/rbm.cpp.
// Parameter structs: fastgen/params/cd.h.
#include "fastgen/grid.h"
#include "fastgen/params/cd.h"

namespace fastgen {
namespace gpu {

// csrc/rbm.cpp apply_velocity: velocity -= decay * param; param += velocity.
template <typename T> FG_HD void apply_velocity_element(const VelocityParams& p, int64_t i) {
  T* param = static_cast<T*>(p.param);
  T* velocity = static_cast<T*>(p.velocity);
  const T v = velocity[i] - static_cast<T>(p.decay) * param[i];
  velocity[i] = v;
  param[i] += v;
}

// csrc/rbm.cpp sgd_momentum_update, element i.
template <typename T> FG_HD void sgd_element(const SgdParams& p, int64_t i) {
  T* param = static_cast<T*>(p.param);
  const T* grad = static_cast<const T*>(p.grad);
  const T lr = static_cast<T>(p.lr), wd = static_cast<T>(p.weight_decay);
  if (p.velocity == nullptr) {
    param[i] += lr * (grad[i] - wd * param[i]);
    return;
  }
  T* velocity = static_cast<T*>(p.velocity);
  const T v = static_cast<T>(p.momentum) * velocity[i] + lr * (grad[i] - wd * param[i]);
  velocity[i] = v;
  param[i] += v;
}

}  // namespace gpu
}  // namespace fastgen

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FG_CD_KERNELS(T, SUFFIX)                                                              \
  extern "C" __global__ void fg_apply_velocity_##SUFFIX(const fastgen::gpu::VelocityParams p) { \
    FG_GRID_STRIDE_LOOP(i, p.n) fastgen::gpu::apply_velocity_element<T>(p, i);                 \
  }                                                                                           \
  extern "C" __global__ void fg_sgd_update_##SUFFIX(const fastgen::gpu::SgdParams p) {        \
    FG_GRID_STRIDE_LOOP(i, p.n) fastgen::gpu::sgd_element<T>(p, i);                            \
  }

FG_CD_KERNELS(float, f32)
FG_CD_KERNELS(double, f64)
#undef FG_CD_KERNELS
#endif

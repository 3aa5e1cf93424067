// Device entry points for @numba.cuda.jit kernels (fastgen.numba.cuda): the functions of
// csrc/numba.cpp in numba's foreign-function convention, where the result goes through the first
// pointer and the int returned is a status (0: no exception). Compiled to PTX with fastgen's
// NVRTC options (no FMA contraction) and linked into the user's kernel.
#include "fastgen/math.h"
#include "fastgen/stream_at.h"

#define FG_NUMBA_ENTRY extern "C" __device__ int

FG_NUMBA_ENTRY fastgen_cuda_bits(uint32_t* out, uint64_t seed, uint64_t offset, uint64_t index) {
  *out = fastgen::bits_at(seed, offset, index);
  return 0;
}

#define FG_NUMBA_FLOAT_ENTRIES(T, NAME)                                                                          \
  FG_NUMBA_ENTRY fastgen_cuda_uniform_##NAME(T* out, uint64_t seed, uint64_t offset, uint64_t index) {         \
    *out = fastgen::uniform_at<T>(seed, offset, index);                                                         \
    return 0;                                                                                                  \
  }                                                                                                            \
  FG_NUMBA_ENTRY fastgen_cuda_normal_##NAME(T* out, uint64_t seed, uint64_t offset, uint64_t index) {          \
    *out = fastgen::normal_at<T>(seed, offset, index);                                                          \
    return 0;                                                                                                  \
  }                                                                                                            \
  FG_NUMBA_ENTRY fastgen_cuda_sigmoid_##NAME(T* out, T x) { *out = fastgen::sigmoid(x); return 0; }            \
  FG_NUMBA_ENTRY fastgen_cuda_softplus_##NAME(T* out, T x) { *out = fastgen::softplus(x); return 0; }          \
  FG_NUMBA_ENTRY fastgen_cuda_log_sigmoid_##NAME(T* out, T x) { *out = fastgen::log_sigmoid(x); return 0; }    \
  FG_NUMBA_ENTRY fastgen_cuda_log_add_exp_##NAME(T* out, T a, T b) {                                            \
    *out = fastgen::log_add_exp(a, b);                                                                          \
    return 0;                                                                                                  \
  }                                                                                                            \
  FG_NUMBA_ENTRY fastgen_cuda_bernoulli_##NAME(T* out, T p, uint64_t seed, uint64_t offset, uint64_t index) {  \
    *out = fastgen::bernoulli_at(p, seed, offset, index);                                                       \
    return 0;                                                                                                  \
  }                                                                                                            \
  FG_NUMBA_ENTRY fastgen_cuda_bernoulli_logit_##NAME(T* out, T x, uint64_t seed, uint64_t offset,               \
                                                     uint64_t index) {                                          \
    *out = fastgen::bernoulli_logit_at(x, seed, offset, index);                                                 \
    return 0;                                                                                                  \
  }                                                                                                            \
  FG_NUMBA_ENTRY fastgen_cuda_gaussian_##NAME(T* out, T mean, T stddev, uint64_t seed, uint64_t offset,         \
                                              uint64_t index) {                                                 \
    *out = fastgen::gaussian_at(mean, stddev, seed, offset, index);                                             \
    return 0;                                                                                                  \
  }                                                                                                            \
  FG_NUMBA_ENTRY fastgen_cuda_categorical_##NAME(int64_t* out, const T* logits, int64_t cols, T temperature,    \
                                                 uint64_t seed, uint64_t offset, uint64_t row) {                \
    *out = fastgen::categorical_at(logits, cols, temperature, seed, offset, row);                               \
    return 0;                                                                                                  \
  }

FG_NUMBA_FLOAT_ENTRIES(float, float32)
FG_NUMBA_FLOAT_ENTRIES(double, float64)

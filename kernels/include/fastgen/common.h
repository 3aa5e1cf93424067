// Shared by the C++ CPU kernels (csrc/) and the CUDA kernels (kernels/*.cu).
// Every formula lives once in these headers and is marked FG_HD so that the CPU test suite
// exercises the very code the GPU runs.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FG_HD __host__ __device__ __forceinline__
#define FG_DEVICE_COMPILE 1
#else
#define FG_HD inline
#endif

#if defined(__CUDACC_RTC__)
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef int int32_t;
typedef long long int64_t;
#else
#include <cstdint>
#include <cstring>
#include <cmath>
#endif

namespace fastgen {

// Bit casts: memcpy on the host (well-defined), intrinsics on the device.
FG_HD uint32_t float_as_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u; std::memcpy(&u, &x, sizeof u); return u;
#endif
}
FG_HD float bits_as_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x; std::memcpy(&x, &u, sizeof x); return x;
#endif
}
FG_HD uint64_t double_as_bits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  uint64_t u; std::memcpy(&u, &x, sizeof u); return u;
#endif
}
FG_HD double bits_as_double(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double x; std::memcpy(&x, &u, sizeof x); return x;
#endif
}

}  // namespace fastgen

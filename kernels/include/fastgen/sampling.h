// Turning Philox words into uniforms, normals and Bernoulli states. One definition for every
// backend; see philox.h for how elements map to counters.
#pragma once
#include "common.h"
#include "math.h"
#include "philox.h"

namespace fastgen {

// Uniform on [0, 1): float keeps the top 24 bits (every value exact), double all 32.
FG_HD float uniform_from_bits(uint32_t x, float) { return static_cast<float>(x >> 8) * 5.9604644775390625e-08f; }
FG_HD double uniform_from_bits(uint32_t x, double) { return static_cast<double>(x) * 2.3283064365386963e-10; }

template <typename T> FG_HD T uniform01(uint32_t x) { return uniform_from_bits(x, T()); }

// Uniform on the open interval (0, 1), for samplers that take log(u) and log(1 - u): float
// (2k + 1) 2^-24 from the top 23 bits k (every value and its complement exact), double
// (x + 1/2) 2^-32. Neither end can be drawn, so neither logarithm is ever infinite.
FG_HD float uniform_open_from_bits(uint32_t x, float) {
  return static_cast<float>((x >> 9) * 2u + 1u) * 5.9604644775390625e-08f;
}
FG_HD double uniform_open_from_bits(uint32_t x, double) { return (static_cast<double>(x) + 0.5) * 2.3283064365386963e-10; }

template <typename T> FG_HD T uniform_open01(uint32_t x) { return uniform_open_from_bits(x, T()); }

// Bernoulli(p) from one uniform: P(state = 1) = P(u < p); p = 0 never fires, p = 1 always does.
template <typename T> FG_HD T bernoulli_state(T p, T u) { return u < p ? T(1) : T(0); }

// Box-Muller: two uniforms -> two independent standard normals. 1 - u lies in (0, 1], so the
// logarithm is always finite.
template <typename T> FG_HD void box_muller(uint32_t a, uint32_t b, T& n0, T& n1) {
  const T u1 = uniform01<T>(a), u2 = uniform01<T>(b);
  const T radius = fg_sqrt(T(-2) * fg_log(T(1) - u1));
  T s, c;
  sincos_2pi(u2, s, c);
  n0 = radius * c;
  n1 = radius * s;
}

// The four normals of one Philox block: lanes (0, 1) and (2, 3) each feed one Box-Muller pair,
// so element i of a call is normal number (i % 4) of block (i / 4), like the uniforms.
template <typename T> FG_HD void normals_from_block(const Philox4& r, T out[4]) {
  box_muller(r.v[0], r.v[1], out[0], out[1]);
  box_muller(r.v[2], r.v[3], out[2], out[3]);
}

// Reparameterised Gaussian: mean + std * eps.
template <typename T> FG_HD T gaussian_sample(T mean, T stddev, T eps) { return fg_fma(stddev, eps, mean); }

}  // namespace fastgen

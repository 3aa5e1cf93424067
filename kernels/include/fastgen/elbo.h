// The reconstruction terms of a VAE's ELBO, one definition for every backend (csrc/elbo.cpp on
// the CPU). Per element, for a data value x and the decoder's output:
//   Bernoulli, from logits l:  log p(x | l) = x * l - softplus(l)
//       (the negative binary cross-entropy with logits; valid for any x in [0, 1])
//       d/dl = x - sigmoid(l),   d/dx = l
//   Gaussian, mean m, log-variance v:
//       log N(x | m, e^v) = -(log(2 pi) + v + (x - m)^2 e^-v) / 2
//       d/dm = (x - m) e^-v,   d/dv = ((x - m)^2 e^-v - 1) / 2,   d/dx = -(x - m) e^-v
// The kernels sum these over each sample's features: one number per row.
#pragma once
#include "math.h"

namespace fastgen {

template <typename T> FG_HD T bernoulli_log_prob(T x, T logit) { return x * logit - softplus(logit); }
template <typename T> FG_HD T bernoulli_log_prob_grad_logit(T x, T logit) { return x - sigmoid(logit); }

template <typename T> struct LogTwoPi;
template <> struct LogTwoPi<float> { static constexpr float value = 1.83787706640934548f; };
template <> struct LogTwoPi<double> { static constexpr double value = 1.8378770664093454836; };

// precision = e^-v, computed once per element by the caller (the backward reuses it).
template <typename T> FG_HD T gaussian_log_prob(T x, T mean, T logvar, T precision) {
  const T d = x - mean;
  return T(-0.5) * (LogTwoPi<T>::value + logvar + d * d * precision);
}
template <typename T> FG_HD T gaussian_log_prob_grad_mean(T x, T mean, T precision) { return (x - mean) * precision; }
template <typename T> FG_HD T gaussian_log_prob_grad_logvar(T x, T mean, T precision) {
  const T d = x - mean;
  return T(0.5) * (d * d * precision - T(1));
}

}  // namespace fastgen

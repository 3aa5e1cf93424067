// Annealed importance sampling for a Bernoulli-Bernoulli RBM (Salakhutdinov & Murray 2008):
// the formula every backend uses for a chain's log-weight. Included by csrc/ais.cpp.
//
// The path of distributions from the base-rate RBM A (no weights, no hidden bias, visible bias
// b_A) to the target B (W, b, c), at inverse temperature beta, has the unnormalised marginal
//   log p*_beta(v) = (1 - beta) b_A.v + beta b.v + sum_j softplus(beta (W_j v + c_j)),
// so log Z_0 = sum_i softplus(b_A_i) + n_hidden log 2 and p*_1 is the target's exp(-F(v)).
// Moving a chain at v from beta0 to beta1 adds log p*_beta1(v) - log p*_beta0(v) to its
// log-weight: a visible part (beta1 - beta0) (b - b_A).v, and for each hidden unit the part
// below, evaluated in double because it is the small difference of two larger numbers that
// is summed over ~14,500 temperatures.
#pragma once
#include "math.h"

namespace fastgen {

// softplus(beta1 * a) - softplus(beta0 * a), a = W_j v + c_j the hidden pre-activation: the
// general form, for any step size.
template <typename T> FG_HD double ais_hidden_increment(T a, double beta0, double beta1) {
  const double x = static_cast<double>(a);
  return softplus(beta1 * x) - softplus(beta0 * x);
}

// expm1(x) for |x| <= 1/2, as x (1 + x/2 (1 + x/3 (1 + ...))): terms to x^9 (float) / x^16
// (double), so the first omitted one is below 2^-24 / 2^-53 of the result.
FG_HD float expm1_small(float x) {
  float p = 1.0f;
  p = fg_fma(p * x, 1.0f / 9.0f, 1.0f);
  p = fg_fma(p * x, 1.0f / 8.0f, 1.0f);
  p = fg_fma(p * x, 1.0f / 7.0f, 1.0f);
  p = fg_fma(p * x, 1.0f / 6.0f, 1.0f);
  p = fg_fma(p * x, 1.0f / 5.0f, 1.0f);
  p = fg_fma(p * x, 1.0f / 4.0f, 1.0f);
  p = fg_fma(p * x, 1.0f / 3.0f, 1.0f);
  p = fg_fma(p * x, 1.0f / 2.0f, 1.0f);
  return p * x;
}
FG_HD double expm1_small(double x) {
  constexpr double kInverse[15] = {1.0 / 16, 1.0 / 15, 1.0 / 14, 1.0 / 13, 1.0 / 12, 1.0 / 11, 1.0 / 10, 1.0 / 9,
                                   1.0 / 8,  1.0 / 7,  1.0 / 6,  1.0 / 5,  1.0 / 4,  1.0 / 3,  1.0 / 2};
  double p = 1.0;
#pragma unroll
  for (int k = 0; k < 15; ++k) p = fg_fma(p * x, kInverse[k], 1.0);
  return p * x;
}

// The same increment for small steps, |(beta1 - beta0) a| <= 1/2 (every step of a long
// schedule): with s = sigmoid(beta1 a), the probability the transition samples h with anyway,
//   softplus(beta1 a) - softplus(beta0 a) = -log1p(s * expm1(-(beta1 - beta0) a)).
// No cancellation: its relative error is a few ulp of T, where the general form loses the
// leading digits of two nearly equal softplus values.
// s * expm1(.) lies in [-0.4, 0.65], inside the range where log1p_unit's series converges.
template <typename T> FG_HD T ais_hidden_increment_small_step(T s, T step_times_a) {
  return -log1p_unit(s * expm1_small(-step_times_a));
}

}  // namespace fastgen

namespace fastgen {

// The transition at beta is block Gibbs in the joint of v and B's hidden units:
//   P(h_j = 1 | v) = sigmoid(beta (W_j v + c_j)),
//   P(v_i = 1 | h) = sigmoid(beta (h W_:i) + mixed_i),  mixed_i = (1 - beta) b_A_i + beta b_i.
template <typename T> FG_HD T ais_mixed_visible_bias(T base_bias, T bias, double beta) {
  return static_cast<T>((1.0 - beta) * static_cast<double>(base_bias) + beta * static_cast<double>(bias));
}

}  // namespace fastgen

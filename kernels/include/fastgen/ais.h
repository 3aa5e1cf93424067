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

// softplus(beta1 * a) - softplus(beta0 * a), a = W_j v + c_j the hidden pre-activation.
template <typename T> FG_HD double ais_hidden_increment(T a, double beta0, double beta1) {
  const double x = static_cast<double>(a);
  return softplus(beta1 * x) - softplus(beta0 * x);
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

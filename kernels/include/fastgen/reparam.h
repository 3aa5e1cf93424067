// The reparameterised Gaussian of a VAE's encoder and its KL term, one definition for every
// backend (csrc/reparam.cpp on the CPU).
//   z  = mu + exp(logvar / 2) * eps,               eps ~ N(0, 1) from the Philox stream
//   kl = sum_d KL(N(mu_d, exp(logvar_d)) || N(0, 1)) = sum_d (mu_d^2 + exp(logvar_d) - 1 - logvar_d) / 2
// and their derivatives; the backward pass regenerates eps from the same counters.
#pragma once
#include "math.h"
#include "sampling.h"

namespace fastgen {

template <typename T> FG_HD T reparam_std(T logvar) { return fg_exp(T(0.5) * logvar); }

// One element's KL term, (mu^2 + sigma^2 - 1 - logvar) / 2, given sigma = exp(logvar / 2).
template <typename T> FG_HD T kl_standard_normal_term(T mu, T logvar, T sigma) {
  return T(0.5) * (mu * mu + sigma * sigma - T(1) - logvar);
}

// d/dmu and d/dlogvar of  g_z * z + g_kl * kl_term:
//   dmu     = g_z + g_kl * mu
//   dlogvar = g_z * eps * sigma / 2 + g_kl * (sigma^2 - 1) / 2
template <typename T> FG_HD T reparam_grad_mu(T g_z, T g_kl, T mu) { return g_z + g_kl * mu; }
template <typename T> FG_HD T reparam_grad_logvar(T g_z, T g_kl, T eps, T sigma) {
  return T(0.5) * (g_z * eps * sigma + g_kl * (sigma * sigma - T(1)));
}

}  // namespace fastgen

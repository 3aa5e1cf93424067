"""Gaussian-Bernoulli restricted Boltzmann machine (real-valued visible units, binary hidden).

Parameterisation (Cho, Ilin and Raiko 2011, "Improved learning of Gaussian-Bernoulli
restricted Boltzmann machines"): with weights ``W`` of shape (n_hidden, n_visible), visible
bias ``b``, hidden bias ``c`` and per-visible-unit standard deviation ``sigma = exp(log_sigma)``,

    E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2)  -  c.h  -  sum_ij h_j W_ji v_i / sigma_i^2

so the visible units couple to the hidden ones through ``v / sigma^2``. Consequences:

* ``P(h_j = 1 | v) = sigmoid(c_j + sum_i W_ji v_i / sigma_i^2)``;
* ``v | h ~ N(b + W^T h, diag(sigma^2))``: the mean does *not* move when sigma changes (with the
  other common choice, coupling through ``v / sigma``, the mean is ``b + sigma * W^T h``);
* free energy ``F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + W_j (v / sigma^2))``;
* the marginal ``P(v)`` is a mixture of ``2**n_hidden`` Gaussians with means ``b + W^T h`` and the
  shared covariance ``diag(sigma^2)``, so integrating v out is analytic:
  ``log Z = n_visible / 2 log(2 pi) + sum_i log sigma_i
  + logsumexp_h [c.h + sum_i ((W^T h)_i^2 + 2 b_i (W^T h)_i) / (2 sigma_i^2)]``,
  exact by enumerating h for up to :data:`MAX_ENUMERABLE_HIDDEN` hidden units.

With ``sigma = 1`` both parameterisations coincide; that is the usual setting (``learn_sigma``
off) and it expects standardised data (:func:`standardize`, :func:`check_standardized`).

Gradients of the log-likelihood are data-minus-model expectations of ``-dE/dtheta``:

* ``-dE/dW_ji = h_j v_i / sigma_i^2``,  ``-dE/db_i = (v_i - b_i) / sigma_i^2``,  ``-dE/dc_j = h_j``;
* ``-dE/dlog sigma_i = ((v_i - b_i)^2 - 2 v_i (W^T h)_i) / sigma_i^2``.

All four are linear in h, so both phases use P(h | v) in place of sampled h (Rao-Blackwellised).
:class:`GaussianContrastiveDivergence` estimates them by CD-k / PCD-k and scales the W and b
steps of unit i by sigma_i^2 (a preconditioner that makes training independent of the units of
each feature; nothing changes at sigma = 1).

Randomness comes from fastgen's Philox stream through the compiled samplers
(:mod:`fastgen.ops.sampling`); the products are NumPy GEMMs (BLAS).

The model is in ``_model``, the trainer in ``_training``, standardisation in ``_standardization``.
"""
from ._model import MAX_ENUMERABLE_HIDDEN, GaussianRBM, Gradients
from ._standardization import (STANDARDIZED_MEAN_TOL, STANDARDIZED_STD_RANGE, check_standardized, destandardize,
                               standardization_problems, standardize)
from ._training import GaussianContrastiveDivergence

__all__ = [
    "GaussianRBM", "GaussianContrastiveDivergence", "Gradients", "MAX_ENUMERABLE_HIDDEN",
    "standardize", "destandardize", "check_standardized", "standardization_problems",
    "STANDARDIZED_MEAN_TOL", "STANDARDIZED_STD_RANGE",
]

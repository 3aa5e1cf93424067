"""The annealed-importance-sampling kernel for a Bernoulli-Bernoulli RBM: all chains advance
together through the inverse temperatures in compiled code, accumulating their log importance
weights in float64 (the estimator around it is :mod:`fastgen.models.ais`).

Along ``log p*_beta(v) = (1 - beta) a.v + beta b.v + sum_j softplus(beta (W_j v + c_j))`` (``a``
the base-rate visible biases), chain m starts from an exact draw of the base model and, at each
intermediate beta_k, adds ``log p*_beta_k(v) - log p*_beta_k-1(v)`` to its log weight and takes
one block-Gibbs step at beta_k.
"""
from __future__ import annotations

import numpy as np

from .._checks import as_generator, flag, positive_int
from .._native import cpu as _cpu
from .validation import float_array, rbm_parameters, vector

__all__ = ["ais_log_weights", "ais_offsets"]


def ais_offsets(n_betas: int) -> int:
    """Philox offsets one AIS run over ``n_betas`` inverse temperatures takes."""
    return 2 * n_betas - 3


def ais_log_weights(W, b_vis, b_hid, base_visible_bias, betas, *, n_chains: int, generator=None,
                    return_states: bool = False, binary_products: bool | None = None):
    """Log importance weights of ``n_chains`` AIS runs from the base-rate model to the RBM.

    Parameters
    ----------
    W : array of shape (n_hidden, n_visible)
    b_vis, b_hid : arrays of shape (n_visible,), (n_hidden,)
        The target RBM; the chains run in W's dtype (float32 or float64).
    base_visible_bias : array of shape (n_visible,)
        Visible biases of the base-rate model (no weights, no hidden bias).
    betas : array of shape (n_betas,), n_betas >= 2
        Inverse temperatures from 0 to 1, float64.
    n_chains : int >= 1
    generator : fastgen.Generator, int or None
        Takes :func:`ais_offsets` ``(n_betas)`` offsets.
    return_states : bool
        Also return the chains' final visible states, shape (n_chains, n_visible).
    binary_products : bool, optional
        Products with the sampled 0/1 states as binary_matmul where it beats BLAS (True) or on
        BLAS (False); they agree up to rounding. Default: True unless the environment sets
        FASTGEN_DENSE_PRODUCTS=1.

    Returns
    -------
    log_weights : ndarray of shape (n_chains,), float64 (and the states when ``return_states``)
    """
    W, b_vis, b_hid = rbm_parameters(W, b_vis, b_hid)
    base = vector(base_visible_bias, "base_visible_bias", W.shape[1], W.dtype)
    betas = float_array(betas, "betas", ndim=1, dtype=np.float64)
    if betas.shape[0] < 2:
        raise ValueError(f"betas must hold at least 2 inverse temperatures, got shape {betas.shape}")
    n_chains = positive_int(n_chains, "n_chains")
    return_states = flag(return_states, "return_states")
    binary_products = _cpu.binary_products_default() if binary_products is None else flag(binary_products,
                                                                                          "binary_products")
    gen = as_generator(generator)
    log_weights = np.empty(n_chains, np.float64)
    states = np.empty((n_chains, W.shape[1]), W.dtype) if return_states else None
    _cpu.C.rbm_ais(weights=W, visible_bias=b_vis, hidden_bias=b_hid, base_visible_bias=base, betas=betas,
                   log_weights=log_weights, visible_out=states, seed=gen.seed,
                   offset=gen.take(ais_offsets(betas.shape[0])), binary_products=binary_products)
    return (log_weights, states) if return_states else log_weights

"""The annealed-importance-sampling kernels for a Bernoulli-Bernoulli RBM, forward (AIS, from the
base-rate model: log Z) and in reverse (RAISE, from data rows: log P(x)): all chains advance
together through the inverse temperatures in compiled code, accumulating their log importance
weights in float64 (the estimators around them are in :mod:`fastgen.models.ais`).

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

__all__ = ["ais_log_weights", "ais_offsets", "raise_log_weights", "raise_offsets"]


def ais_offsets(n_betas: int) -> int:
    """Philox offsets one AIS run over ``n_betas`` inverse temperatures takes."""
    return 2 * n_betas - 3


def ais_log_weights(W, b_vis, b_hid, base_visible_bias, betas, *, n_chains: int, generator=None,
                    return_states: bool = False, binary_products: bool | None = None, first_chain: int = 0):
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
    first_chain : int >= 0
        These chains are chains ``first_chain ..`` of a larger run (one rank's share of it):
        each draws exactly what it draws in the whole run.

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
    first_chain = positive_int(first_chain, "first_chain", minimum=0)
    return_states = flag(return_states, "return_states")
    binary_products = _cpu.binary_products_default() if binary_products is None else flag(binary_products,
                                                                                          "binary_products")
    gen = as_generator(generator)
    log_weights = np.empty(n_chains, np.float64)
    states = np.empty((n_chains, W.shape[1]), W.dtype) if return_states else None
    _cpu.C.rbm_ais(weights=W, visible_bias=b_vis, hidden_bias=b_hid, base_visible_bias=base, betas=betas,
                   log_weights=log_weights, visible_out=states, seed=gen.seed,
                   offset=gen.take(ais_offsets(betas.shape[0])), binary_products=binary_products,
                   first_chain=first_chain)
    return (log_weights, states) if return_states else log_weights


def raise_offsets(n_betas: int) -> int:
    """Philox offsets one reverse run over ``n_betas`` inverse temperatures takes."""
    return 2 * (n_betas - 1)


def raise_log_weights(W, b_vis, b_hid, base_visible_bias, betas, data, *, chains_per_row: int, generator=None,
                      binary_products: bool | None = None, first_row: int = 0):
    """Reverse-AIS log-weights: ``chains_per_row`` chains start at each row of ``data`` and run
    the AIS transitions backwards, from beta = 1 down to the base-rate model.

    With x_K the row and x_k-1 one block-Gibbs step at beta_k from x_k, each chain's entry is
    ``sum_k log p*_beta_k-1(x_k-1) - log p*_beta_k(x_k-1)``; then
    ``log P(x) ~ -F(x) - log Z_A + log mean exp(log_weights[row])`` (an estimate that errs low,
    where AIS's errs high; :func:`fastgen.models.ais.raise_log_likelihood` assembles it).

    Parameters
    ----------
    W : array of shape (n_hidden, n_visible)
    b_vis, b_hid : arrays of shape (n_visible,), (n_hidden,)
        The target RBM; the chains run in W's dtype (float32 or float64).
    base_visible_bias : array of shape (n_visible,)
        Visible biases of the base-rate model.
    betas : array of shape (n_betas,), n_betas >= 2
        Inverse temperatures from 0 to 1, float64 (run from the last to the first).
    data : array of shape (n_rows, n_visible)
        0/1 rows (converted to W's dtype).
    chains_per_row : int >= 1
    generator : fastgen.Generator, int or None
        Takes :func:`raise_offsets` ``(n_betas)`` offsets.
    binary_products : bool, optional
        As for :func:`ais_log_weights`.
    first_row : int >= 0
        ``data`` is rows ``first_row ..`` of a larger set (one rank's share): each chain draws
        exactly what it draws in the whole run.

    Returns
    -------
    log_weights : ndarray of shape (n_rows, chains_per_row), float64
    """
    W, b_vis, b_hid = rbm_parameters(W, b_vis, b_hid)
    base = vector(base_visible_bias, "base_visible_bias", W.shape[1], W.dtype)
    betas = float_array(betas, "betas", ndim=1, dtype=np.float64)
    if betas.shape[0] < 2:
        raise ValueError(f"betas must hold at least 2 inverse temperatures, got shape {betas.shape}")
    x = float_array(data, "data", ndim=2, dtype=W.dtype)
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"data must have {W.shape[1]} columns (n_visible), got shape {x.shape}")
    if not np.all((x == 0) | (x == 1)):
        raise ValueError("data must hold only 0 and 1 (binary rows)")
    chains_per_row = positive_int(chains_per_row, "chains_per_row")
    first_row = positive_int(first_row, "first_row", minimum=0)
    binary_products = _cpu.binary_products_default() if binary_products is None else flag(binary_products,
                                                                                          "binary_products")
    gen = as_generator(generator)
    log_weights = np.empty((x.shape[0], chains_per_row), np.float64)
    _cpu.C.rbm_raise(weights=W, visible_bias=b_vis, hidden_bias=b_hid, base_visible_bias=base, betas=betas,
                     data=np.ascontiguousarray(x), log_weights=log_weights, seed=gen.seed,
                     offset=gen.take(raise_offsets(betas.shape[0])), binary_products=binary_products,
                     first_chain=first_row * chains_per_row)
    return log_weights

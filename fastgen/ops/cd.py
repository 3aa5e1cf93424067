"""Contrastive-divergence gradient estimates for a Bernoulli-Bernoulli RBM."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._native import cpu as _cpu
from .._backend import placement
from .validation import as_generator
from .validation import INT32_MAX, float_array, float_array_cuda, positive_int, rbm_parameters, rbm_parameters_cuda


class CDGradients(NamedTuple):
    """Ascent directions of the log-likelihood (data term minus model term) and the chains."""

    # NumPy for CPU input; for CUDA input, arrays of the caller's framework on its device
    weights: np.ndarray        # [n_hidden, n_visible]
    visible_bias: np.ndarray   # [n_visible]
    hidden_bias: np.ndarray    # [n_hidden]
    chains: np.ndarray         # [n_chains, n_hidden] hidden states after the last step


def cd_gradients(v, W, b_vis, b_hid, *, k: int = 1, generator=None, persistent_chains=None) -> CDGradients:
    """CD-k (or PCD-k with ``persistent_chains``) gradient estimate for one mini-batch.

    ``dW = <h v^T>_data - <h v^T>_model``, each a mean over its own rows: the data term uses
    P(h | v) of the batch, the model term the sampled visible states of the chains after k
    steps and P(h | v_k). This is the update :meth:`fastgen.models.rbm.ContrastiveDivergence`
    applies in compiled code, drawn from the same counters.

    Parameters
    ----------
    v : array of shape (batch, n_visible)
    W : array of shape (n_hidden, n_visible)
    b_vis, b_hid : arrays of shape (n_visible,), (n_hidden,)
    k : int >= 1
        Gibbs steps in the negative phase.
    generator : fastgen.Generator, int or None
        Takes ``2 k + 1`` offsets: the first for h ~ P(h | v_data) (CD only), then per step s
        ``first + 1 + 2 s`` for v and ``first + 2 + 2 s`` for h.
    persistent_chains : array of shape (n_chains, n_hidden), optional
        Hidden states of persistent chains (PCD); not modified, the advanced chains are
        returned.

    Returns
    -------
    CDGradients
        NumPy arrays for CPU input; for CUDA input, arrays of v's framework on its device
        (computed there with cuBLAS and the CUDA sampling kernel, same counters).
    """
    pl = placement(v=v, W=W, b_vis=b_vis, b_hid=b_hid, persistent_chains=persistent_chains)
    if pl.cuda:
        with pl.activate():
            return _cd_gradients_cuda(pl, v, W, b_vis, b_hid, k, generator, persistent_chains)
    W, b_vis, b_hid = rbm_parameters(W, b_vis, b_hid)
    v = float_array(v, "v", ndim=2, dtype=W.dtype, allow_empty=False)
    if v.shape[1] != W.shape[1]:
        raise ValueError(f"v must have {W.shape[1]} columns (n_visible of W), got shape {v.shape}")
    k = positive_int(k, "k", maximum=INT32_MAX)
    gen = as_generator(generator)
    seed, first = gen.seed, gen.take(2 * k + 1)
    C = _cpu.C

    hidden_pos = v @ W.T
    if persistent_chains is None:
        chains = np.empty_like(hidden_pos)
        C.sample_bernoulli(hidden_pos, b_hid, hidden_pos, chains, True, seed, first)
    else:
        chains = float_array(persistent_chains, "persistent_chains", ndim=2, dtype=W.dtype, allow_empty=False).copy()
        if chains.shape[1] != W.shape[0]:
            raise ValueError(f"persistent_chains must have {W.shape[0]} columns (n_hidden), got {chains.shape}")
        C.sample_bernoulli(hidden_pos, b_hid, hidden_pos, None, True, 0, 0)
    for step in range(k):
        visible_neg = np.empty((chains.shape[0], W.shape[1]), W.dtype)
        C.sample_bernoulli(chains @ W, b_vis, None, visible_neg, True, seed, first + 1 + 2 * step)
        hidden_neg = visible_neg @ W.T
        if step + 1 == k and persistent_chains is None:
            C.sample_bernoulli(hidden_neg, b_hid, hidden_neg, None, True, 0, 0)
        else:
            C.sample_bernoulli(hidden_neg, b_hid, hidden_neg, chains, True, seed, first + 2 + 2 * step)
    dW = hidden_pos.T @ v / v.shape[0] - hidden_neg.T @ visible_neg / chains.shape[0]
    db_vis = v.mean(axis=0) - visible_neg.mean(axis=0)
    db_hid = hidden_pos.mean(axis=0) - hidden_neg.mean(axis=0)
    return CDGradients(dW, db_vis, db_hid, chains)


def _cd_gradients_cuda(pl, v, W, b_vis, b_hid, k, generator, persistent_chains) -> CDGradients:
    """The CPU code above, line for line, on CuPy arrays."""
    import cupy as cp

    from .._native import cuda as _cuda

    W, b_vis, b_hid = rbm_parameters_cuda(pl, W, b_vis, b_hid)
    v = float_array_cuda(pl.array(v, "v"), "v", ndim=2, dtype=W.dtype, allow_empty=False)
    if v.shape[1] != W.shape[1]:
        raise ValueError(f"v must have {W.shape[1]} columns (n_visible of W), got shape {v.shape}")
    k = positive_int(k, "k", maximum=INT32_MAX)
    gen = as_generator(generator)
    seed, first = gen.seed, gen.take(2 * k + 1)

    hidden_pos = cp.empty((v.shape[0], W.shape[0]), W.dtype)
    _cuda.gemm("N", "T", v, W, hidden_pos)
    if persistent_chains is None:
        chains = cp.empty_like(hidden_pos)
        _cuda.bernoulli(hidden_pos, b_hid, hidden_pos, chains, seed=seed, offset=first)
    else:
        chains = float_array_cuda(pl.array(persistent_chains, "persistent_chains"), "persistent_chains", ndim=2,
                                  dtype=W.dtype, allow_empty=False).copy()
        if chains.shape[1] != W.shape[0]:
            raise ValueError(f"persistent_chains must have {W.shape[0]} columns (n_hidden), got {chains.shape}")
        _cuda.bernoulli(hidden_pos, b_hid, hidden_pos, None)
    visible_neg = cp.empty((chains.shape[0], W.shape[1]), W.dtype)
    hidden_neg = cp.empty((chains.shape[0], W.shape[0]), W.dtype)
    for step in range(k):
        _cuda.gemm("N", "N", chains, W, visible_neg)
        _cuda.bernoulli(visible_neg, b_vis, None, visible_neg, seed=seed, offset=first + 1 + 2 * step)
        _cuda.gemm("N", "T", visible_neg, W, hidden_neg)
        if step + 1 == k and persistent_chains is None:
            _cuda.bernoulli(hidden_neg, b_hid, hidden_neg, None)
        else:
            _cuda.bernoulli(hidden_neg, b_hid, hidden_neg, chains, seed=seed, offset=first + 2 + 2 * step)
    dW = hidden_pos.T @ v / v.shape[0] - hidden_neg.T @ visible_neg / chains.shape[0]
    db_vis = v.mean(axis=0) - visible_neg.mean(axis=0)
    db_hid = hidden_pos.mean(axis=0) - hidden_neg.mean(axis=0)
    return CDGradients(pl.wrap(dW), pl.wrap(db_vis), pl.wrap(db_hid), pl.wrap(chains))

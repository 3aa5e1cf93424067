"""Exact log pseudo-likelihood of a Bernoulli-Bernoulli RBM, one value per row.

``sum_i log P(v_i | v_-i)`` with ``P(v_i | v_-i) = sigmoid(F(v with v_i flipped) - F(v))``, F the
free energy: flipping unit i changes the hidden pre-activations by ``(1 - 2 v_i) W_:i``, so each
row costs n_visible * n_hidden softplus evaluations and no product beyond ``v W^T``. It is the
expectation of scikit-learn's score_samples, which flips one random unit per row.
"""
from __future__ import annotations

import numpy as np

from .._backend import wrap_like
from .._native import cpu as _cpu
from .validation import float_array, rbm_parameters

__all__ = ["pseudo_likelihood"]


def pseudo_likelihood(v, W, b_vis, b_hid):
    """Log pseudo-likelihood of each row of ``v``.

    Parameters
    ----------
    v : array of shape (n, n_visible)
        Visible vectors, 0/1 (another value v_i is "flipped" to 1 - v_i).
    W : array of shape (n_hidden, n_visible)
    b_vis, b_hid : arrays of shape (n_visible,), (n_hidden,)

    Returns
    -------
    Array of shape (n,), W's dtype, v's array kind.
    """
    W, b_vis, b_hid = rbm_parameters(W, b_vis, b_hid)
    x = float_array(v, "v", ndim=2, dtype=W.dtype, int32_axes=((0, "rows"),))
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"v must have {W.shape[1]} columns (n_visible of W), got shape {x.shape}")
    preactivation = x @ W.T
    preactivation += b_hid
    return wrap_like(pseudo_likelihood_numpy(W, b_vis, b_hid, x, hidden_preactivation=preactivation), v)


def pseudo_likelihood_numpy(W: np.ndarray, b_vis: np.ndarray, b_hid: np.ndarray, v: np.ndarray, *,
                            hidden_preactivation: np.ndarray) -> np.ndarray:
    """The kernel of :func:`pseudo_likelihood` for a model's own arrays, validated by it: all
    C-contiguous NumPy arrays of one float dtype, ``hidden_preactivation = v @ W.T + b_hid`` of
    shape (n, n_hidden). Returns a new array of shape (n,)."""
    out = np.empty(v.shape[0], W.dtype)
    _cpu.C.rbm_pseudo_likelihood(weights=W, visible_bias=b_vis, hidden_bias=b_hid, visible=v,
                                 hidden_preact=hidden_preactivation, out=out)
    return out

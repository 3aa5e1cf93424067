"""References for the binary RBM's math (fastgen.models.rbm): energy, conditionals, free energy,
pseudo-likelihood and, for tiny RBMs, the exact partition function by enumeration."""
from __future__ import annotations

import numpy as np

from .activations import sigmoid, softplus


def as_float64(*arrays):
    """Each argument as a float64 array (the references compute in float64 throughout)."""
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def energy(v, h, W, b_vis, b_hid):
    """E(v, h) = -v.b - h.c - h W v for paired rows."""
    v, h, W, b_vis, b_hid = as_float64(v, h, W, b_vis, b_hid)
    return -(v @ b_vis) - (h @ b_hid) - np.einsum("nj,ji,ni->n", h, W, v)


def hidden_probs(v, W, b_vis, b_hid):
    v, W, b_hid = as_float64(v, W, b_hid)
    return sigmoid(v @ W.T + b_hid)


def visible_probs(h, W, b_vis, b_hid):
    h, W, b_vis = as_float64(h, W, b_vis)
    return sigmoid(h @ W + b_vis)


def free_energy(v, W, b_vis, b_hid):
    """F(v) = -v.b - sum_j softplus(c_j + W_j v) = -log sum_h exp(-E(v, h))."""
    v, W, b_vis, b_hid = as_float64(v, W, b_vis, b_hid)
    return -(v @ b_vis) - softplus(v @ W.T + b_hid).sum(axis=1)


def all_states(n: int) -> np.ndarray:
    """All 2**n binary vectors, row k = the bits of k (float64)."""
    return ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(np.float64)


def log_partition_brute_force(W, b_vis, b_hid) -> float:
    """log Z = log sum_{v, h} exp(-E(v, h)) over every visible AND hidden configuration."""
    W, b_vis, b_hid = as_float64(W, b_vis, b_hid)
    n_hidden, n_visible = W.shape
    V, H = all_states(n_visible), all_states(n_hidden)
    neg_energy = (V @ b_vis)[:, None] + (H @ b_hid)[None, :] + V @ W.T @ H.T
    top = neg_energy.max()
    return float(top + np.log(np.exp(neg_energy - top).sum()))

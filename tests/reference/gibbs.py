"""Reference for fastgen.ops.gibbs: k steps of block Gibbs sampling on the Philox uniforms."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import sigmoid
from .philox import seed_and_offset, uniform
from .rbm import as_float64
from .sampling import ambiguous_tol, bernoulli


class GibbsRef(NamedTuple):
    visible: np.ndarray       # float64 states after the last step
    hidden_probs: np.ndarray  # P(h | v_k), float64
    certain_rows: np.ndarray  # rows whose every draw was farther than tol from its threshold


def gibbs(v, W, b_vis, b_hid, steps=1, *, generator=0, clamp=None, dtype=None, tol=None) -> GibbsRef:
    """Reference for fastgen.ops.gibbs: step s samples h with offset first + 2 s, then v with
    first + 2 s + 1; clamped visible units keep their starting values."""
    dtype = np.dtype(dtype or np.asarray(W).dtype)
    tol = ambiguous_tol(dtype) if tol is None else tol
    v0 = np.asarray(v, np.float64)
    W64, b_vis64, b_hid64 = as_float64(W, b_vis, b_hid)
    seed, first = seed_and_offset(generator, 2 * steps)
    vk = v0.copy()
    certain = np.ones(v0.shape[0], bool)
    mask = None if clamp is None else np.broadcast_to(np.asarray(clamp, bool), v0.shape)
    for s in range(steps):
        ph = sigmoid(vk @ W64.T + b_hid64)
        uh = uniform(seed, first + 2 * s, ph.shape, dtype).astype(np.float64)
        h = bernoulli(ph, uh)
        pv = sigmoid(h @ W64 + b_vis64)
        uv = uniform(seed, first + 2 * s + 1, pv.shape, dtype).astype(np.float64)
        new_v = bernoulli(pv, uv)
        close_v = np.abs(pv - uv) < tol
        if mask is not None:
            new_v = np.where(mask, v0, new_v)
            close_v &= ~mask
        certain &= ~(np.abs(ph - uh) < tol).any(axis=1) & ~close_v.any(axis=1)
        vk = new_v
    return GibbsRef(vk, sigmoid(vk @ W64.T + b_hid64), certain)

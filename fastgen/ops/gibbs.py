"""Block Gibbs sampling in a Bernoulli-Bernoulli RBM, the whole k-step loop in compiled code."""
from __future__ import annotations

import numpy as np

from .. import _cpu
from .._backend import to_numpy, wrap_like
from ..random import as_generator
from ._validate import float_array, positive_int, rbm_parameters


def gibbs(v, W, b_vis, b_hid, steps: int = 1, *, generator=None, clamp=None, return_hidden: bool = False):
    """Run ``steps`` block-Gibbs steps v -> h -> v.

    Parameters
    ----------
    v : array of shape (n, n_visible)
        Starting visible states.
    W : array of shape (n_hidden, n_visible)
        Weights (scikit-learn's ``components_`` layout).
    b_vis : array of shape (n_visible,)
    b_hid : array of shape (n_hidden,)
    steps : int >= 0
    generator : fastgen.Generator, int or None
        Takes ``2 * steps`` offsets: step s samples h with offset ``first + 2 s`` and v with
        ``first + 2 s + 1``.
    clamp : bool array of shape (n_visible,) or (n, n_visible), optional
        True where a visible unit is known: it keeps its value from ``v`` through every step
        (reconstruction of a partly known input).
    return_hidden : bool
        Also return P(h = 1 | v_k), shape (n, n_hidden).

    Returns
    -------
    v_k : array like ``v`` (dtype of W), and P(h | v_k) when ``return_hidden``.
    """
    W, b_vis, b_hid = rbm_parameters(W, b_vis, b_hid)
    v_arr = float_array(v, "v", ndim=2, dtype=W.dtype)
    if v_arr.shape[1] != W.shape[1]:
        raise ValueError(f"v must have {W.shape[1]} columns (n_visible of W), got shape {v_arr.shape}")
    steps = positive_int(steps, "steps", minimum=0)
    mask = None
    if clamp is not None:
        mask = to_numpy(clamp, "clamp")
        if mask.dtype != np.bool_:
            raise TypeError(f"clamp must be a boolean mask, got dtype {mask.dtype}")
        if mask.shape not in ((W.shape[1],), v_arr.shape):
            raise ValueError(f"clamp must have shape ({W.shape[1]},) or {v_arr.shape}, got {mask.shape}")
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
    gen = as_generator(generator)
    out = np.empty_like(v_arr)
    hidden = np.empty((v_arr.shape[0], W.shape[0]), W.dtype) if return_hidden else None
    _cpu.C.rbm_gibbs(W, b_vis, b_hid, v_arr, out, hidden, mask, steps, gen.seed, gen.take(2 * steps),
                     _cpu.binary_products_enabled())
    if return_hidden:
        return wrap_like(out, v), wrap_like(hidden, v)
    return wrap_like(out, v)

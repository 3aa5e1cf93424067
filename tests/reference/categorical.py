"""Reference for fastgen.ops.sample_categorical: the Gumbel-max draw on the open-interval Philox
uniforms of the call, with temperature and top-k."""
from __future__ import annotations

import numpy as np

from .philox import uniform_open


def sample_categorical(logits, temperature, top_k, seed, offset):
    """(draws, margin): the documented draw in float64 from the same uniforms, and the gap
    between the best and second-best key of each row (relative)."""
    dtype = logits.dtype
    x = np.atleast_2d(logits).astype(np.float64)
    rows, cols = x.shape
    t = float(np.asarray(temperature, dtype=dtype))  # the kernel computes in the logits' dtype
    u = uniform_open(seed, offset, (rows, cols), dtype).astype(np.float64)
    keys = x - t * np.log(-np.log1p(-u))
    if top_k is not None and top_k < cols:
        admitted = np.zeros_like(x, dtype=bool)
        for r in range(rows):
            order = np.lexsort((np.arange(cols), -x[r]))  # largest first, ties: lower column
            admitted[r, order[:top_k]] = True
        keys = np.where(admitted, keys, -np.inf)
    draws = np.argmax(keys, axis=1)
    top2 = np.sort(keys, axis=1)[:, -2:] if cols > 1 else np.concatenate([keys - np.inf, keys], axis=1)
    margin = (top2[:, 1] - top2[:, 0]) / (1.0 + np.abs(top2[:, 1]))
    return draws.reshape(logits.shape[:-1]), margin.reshape(logits.shape[:-1])

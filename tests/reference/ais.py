"""Reference for fastgen.ops.ais: annealed importance sampling log-weights with the kernel's draws."""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from .philox import uniform
from .sampling import bernoulli


def ais_log_weights(W, b, c, base, betas, seed, offset, n_chains):
    """Plain NumPy AIS with the kernel's draws: v_0 with offset+0, then at each inner beta_k
    h with offset + 2k - 1 and v with offset + 2k. Returns (log_weights, final states)."""
    W, b, c, base = (np.asarray(a, np.float64) for a in (W, b, c, base))
    n_hidden, n_visible = W.shape
    n = n_chains
    v = bernoulli(expit(np.broadcast_to(base, (n, n_visible))), uniform(seed, offset, (n, n_visible)))
    log_w = np.zeros(n)
    last = len(betas) - 1
    for k in range(1, last + 1):
        b0, b1 = betas[k - 1], betas[k]
        a = v @ W.T + c
        log_w += (b1 - b0) * (v @ (b - base)) + (np.logaddexp(0, b1 * a) - np.logaddexp(0, b0 * a)).sum(axis=1)
        if k == last:
            break
        h = bernoulli(expit(b1 * a), uniform(seed, offset + 2 * k - 1, (n, n_hidden)))
        logits = b1 * (h @ W) + (1 - b1) * base + b1 * b
        v = bernoulli(expit(logits), uniform(seed, offset + 2 * k, (n, n_visible)))
    return log_w, v

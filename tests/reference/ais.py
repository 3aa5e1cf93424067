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


def raise_log_weights(W, b, c, base, betas, data, seed, offset, chains_per_row):
    """Plain NumPy reverse AIS with the kernel's draws: from each row repeated chains_per_row
    times, at beta_k for k = K, ..., 1, h with offset + 2 (K - k) and v with offset + 2 (K - k) + 1,
    then log p*_beta_k-1(v) - log p*_beta_k(v) added. Returns log-weights [rows, chains_per_row]."""
    W, b, c, base = (np.asarray(a, np.float64) for a in (W, b, c, base))
    n_hidden, n_visible = W.shape
    rows = np.asarray(data, np.float64).shape[0]
    v = np.repeat(np.asarray(data, np.float64), chains_per_row, axis=0)
    n = v.shape[0]
    log_w = np.zeros(n)
    last = len(betas) - 1
    for k in range(last, 0, -1):
        b_k, b_down = betas[k], betas[k - 1]
        h = bernoulli(expit(b_k * (v @ W.T + c)), uniform(seed, offset + 2 * (last - k), (n, n_hidden)))
        logits = b_k * (h @ W) + (1 - b_k) * base + b_k * b
        v = bernoulli(expit(logits), uniform(seed, offset + 2 * (last - k) + 1, (n, n_visible)))
        a = v @ W.T + c
        log_w += (b_down - b_k) * (v @ (b - base)) + (np.logaddexp(0, b_down * a) - np.logaddexp(0, b_k * a)).sum(axis=1)
    return log_w.reshape(rows, chains_per_row)

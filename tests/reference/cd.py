"""References for fastgen.ops.cd: the CD-k / PCD-k gradients of one mini-batch, the SGD update
with momentum and weight decay, and one training pass over consecutive mini-batches."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

import fastgen

from .activations import sigmoid
from .philox import seed_and_offset, uniform
from .rbm import as_float64
from .sampling import ambiguous_tol, bernoulli
from .sgd import sgd_step


class CDRef(NamedTuple):
    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    chains: np.ndarray
    n_ambiguous: int          # draws within tol of their threshold (0: the comparison is exact)


def cd_gradients(v, W, b_vis, b_hid, *, k=1, generator=0, persistent_chains=None, dtype=None, tol=None) -> CDRef:
    """Reference for fastgen.ops.cd_gradients (takes 2k + 1 offsets): offset ``first`` draws
    h ~ P(h | v_data) (CD only), step s draws v with ``first + 1 + 2 s`` and h with
    ``first + 2 + 2 s`` (not on the last step of CD, which keeps P(h | v_k)).
    dW = <P(h|v) v^T>_data - <P(h|v_k) v_k^T>_chains, each averaged over its own rows."""
    dtype = np.dtype(dtype or np.asarray(W).dtype)
    tol = ambiguous_tol(dtype) if tol is None else tol
    v, W, b_vis, b_hid = as_float64(v, W, b_vis, b_hid)
    seed, first = seed_and_offset(generator, 2 * k + 1)
    n_ambiguous = 0

    def draw(p, offset):
        nonlocal n_ambiguous
        u = uniform(seed, offset, p.shape, dtype).astype(np.float64)
        n_ambiguous += int((np.abs(p - u) < tol).sum())
        return bernoulli(p, u)

    hidden_pos = sigmoid(v @ W.T + b_hid)
    if persistent_chains is None:
        chains = draw(hidden_pos, first)
    else:
        chains = np.asarray(persistent_chains, np.float64).copy()
    for step in range(k):
        visible_neg = draw(sigmoid(chains @ W + b_vis), first + 1 + 2 * step)
        hidden_neg = sigmoid(visible_neg @ W.T + b_hid)
        if not (step + 1 == k and persistent_chains is None):
            chains = draw(hidden_neg, first + 2 + 2 * step)
    dW = hidden_pos.T @ v / v.shape[0] - hidden_neg.T @ visible_neg / chains.shape[0]
    db_vis = v.mean(axis=0) - visible_neg.mean(axis=0)
    db_hid = hidden_pos.mean(axis=0) - hidden_neg.mean(axis=0)
    return CDRef(dW, db_vis, db_hid, chains, n_ambiguous)


class TrainRef(NamedTuple):
    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    velocities: tuple          # (weights, visible bias, hidden bias)
    chains: np.ndarray         # the persistent chains after the pass (CD: the last batch's)
    n_ambiguous: int


def train_pass(data, W, b_vis, b_hid, batch_size, *, k=1, chains=None, learning_rate, momentum=0.0,
               weight_decay=0.0, seed, first_offset, velocities=None, dtype=None, tol=None) -> TrainRef:
    """Reference for one pass of fastgen's CD-k / PCD-k trainer (C.rbm_train_batches): consecutive
    mini-batches of ``batch_size`` rows (the last may be shorter); batch i draws with the offsets
    ``first_offset + i (2k + 1)`` as :func:`cd_gradients`; then v = m v + lr (g - wd param) and
    param += v for the weights, and the same without decay for the biases. PCD when ``chains``
    is given (updated from batch to batch), else CD-k. The parameters are rounded to ``dtype``
    after every batch, as the kernel keeps them."""
    dtype = np.dtype(dtype or np.asarray(W).dtype)
    params = list(as_float64(W, b_vis, b_hid))
    velocity = [np.zeros_like(x) for x in params] if velocities is None else list(as_float64(*velocities))
    n_ambiguous = 0
    last_chains = chains
    for i, start in enumerate(range(0, len(data), batch_size)):
        grads = cd_gradients(data[start:start + batch_size], *params, k=k,
                             generator=fastgen.Generator(seed, first_offset + i * (2 * k + 1)),
                             persistent_chains=chains, dtype=dtype, tol=tol)
        n_ambiguous += grads.n_ambiguous
        last_chains = grads.chains
        if chains is not None:
            chains = grads.chains
        for j, (g, wd) in enumerate(zip(grads[:3], (weight_decay, 0.0, 0.0))):
            params[j], velocity[j] = sgd_step(params[j], velocity[j], g, learning_rate=learning_rate,
                                              momentum=momentum, weight_decay=wd)
            params[j] = params[j].astype(dtype).astype(np.float64)
            velocity[j] = velocity[j].astype(dtype).astype(np.float64)
    return TrainRef(*params, tuple(velocity), last_chains, n_ambiguous)

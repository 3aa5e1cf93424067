"""Contrastive divergence for a Bernoulli-Bernoulli RBM: the gradient estimate of one
mini-batch (:func:`cd_gradients`) and the training epoch (:func:`cd_epoch`, CD-k / PCD-k with
momentum and L2 weight decay, the whole pass in compiled code)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._backend import placement
from .._checks import INT32_MAX, as_generator, check_int32_extent, flag, positive_int, real
from .._native import cpu as _cpu
from .sampling import sample_bernoulli_numpy, sigmoid_numpy
from .validation import DeviceChecks, float_array, float_array_cuda, rbm_parameters, rbm_parameters_cuda

__all__ = ["CDGradients", "cd_epoch", "cd_gradients", "cd_statistics_numpy", "offsets_per_epoch"]


class CDGradients(NamedTuple):
    """Ascent directions of the log-likelihood (data term minus model term) and the chains."""

    # NumPy for CPU input; for CUDA input, arrays of the caller's framework on its device
    weights: np.ndarray        # [n_hidden, n_visible]
    visible_bias: np.ndarray   # [n_visible]
    hidden_bias: np.ndarray    # [n_hidden]
    chains: np.ndarray         # [n_chains, n_hidden] hidden states after the last step


def cd_gradients(v, W, b_vis, b_hid, *, k: int = 1, generator=None, persistent_chains=None, first_row: int = 0,
                 first_chain: int = 0, batch_rows: int | None = None, total_chains: int | None = None) -> CDGradients:
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
    first_row, first_chain : int >= 0
        For a shard of a larger batch (one rank's rows in data-parallel training, one chunk of
        an out-of-core batch): the rows of ``v`` are rows ``first_row ..`` of the whole batch
        and the chains are chains ``first_chain ..`` of all of them (CD: the chains are the
        data rows, ``first_chain`` is unused). Each row and chain then draws exactly the
        states the whole batch's call gives it.
    batch_rows, total_chains : int, optional
        The whole batch's row and chain counts (default: this call's). Each term is a sum over
        this call's rows divided by these counts, so the shards' results add up to the whole
        batch's gradient, to rounding (float sums in another order). ``v`` may then be empty.

    Returns
    -------
    CDGradients
        NumPy arrays for CPU input; for CUDA input, arrays of v's framework on its device
        (computed there with cuBLAS and the CUDA sampling kernel, same counters).
    """
    pl = placement(v=v, W=W, b_vis=b_vis, b_hid=b_hid, persistent_chains=persistent_chains)
    if pl.cuda:
        if first_row or first_chain or batch_rows is not None or total_chains is not None:
            raise ValueError("first_row, first_chain, batch_rows and total_chains (shards of a batch) are "
                             "supported for CPU arrays only")
        with pl.activate():
            return _cd_gradients_cuda(pl, v, W, b_vis, b_hid, k, generator, persistent_chains)
    W, b_vis, b_hid = rbm_parameters(W, b_vis, b_hid)
    sharded = batch_rows is not None
    v = float_array(v, "v", ndim=2, dtype=W.dtype, allow_empty=sharded)
    if v.shape[1] != W.shape[1]:
        raise ValueError(f"v must have {W.shape[1]} columns (n_visible of W), got shape {v.shape}")
    k = positive_int(k, "k", maximum=INT32_MAX)
    first_row = positive_int(first_row, "first_row", minimum=0)
    first_chain = positive_int(first_chain, "first_chain", minimum=0)
    if persistent_chains is not None:
        persistent_chains = float_array(persistent_chains, "persistent_chains", ndim=2, dtype=W.dtype,
                                        allow_empty=False)
        if persistent_chains.shape[1] != W.shape[0]:
            raise ValueError(f"persistent_chains must have {W.shape[0]} columns (n_hidden), "
                             f"got {persistent_chains.shape}")
    n_chains = v.shape[0] if persistent_chains is None else persistent_chains.shape[0]
    batch_rows = v.shape[0] if batch_rows is None else positive_int(batch_rows, "batch_rows", minimum=max(1, v.shape[0]))
    if total_chains is None or persistent_chains is None:  # CD: the chains are the batch's rows
        total_chains = batch_rows if persistent_chains is None else n_chains
    else:
        total_chains = positive_int(total_chains, "total_chains", minimum=n_chains)
    gen = as_generator(generator)
    seed, first = gen.seed, gen.take(2 * k + 1)
    return _cd_gradients_numpy(v, W, b_vis, b_hid, k, seed, first, persistent_chains, first_row,
                               first_row if persistent_chains is None else first_chain, batch_rows, total_chains)


def _cd_gradients_numpy(v, W, b_vis, b_hid, k, seed, first, persistent_chains, first_row, first_chain, batch_rows,
                        total_chains) -> CDGradients:
    """:func:`cd_gradients` on checked NumPy arrays, drawing from offsets first .. first + 2 k."""
    grads = (np.zeros_like(W), np.zeros_like(b_vis), np.zeros_like(b_hid))
    chains = None if persistent_chains is None else persistent_chains.copy()
    chains = cd_statistics_numpy(v, W, b_vis, b_hid, k=k, seed=seed, first=first, out=grads,
                                 data_scale=1.0 / batch_rows, chains_scale=1.0 / total_chains,
                                 persistent_chains=chains, first_row=first_row, first_chain=first_chain)
    return CDGradients(*grads, chains)


# A trusted entry point (arrays checked by the caller, as ops/sampling.py's *_numpy functions), for
# trainers that sum a batch's statistics over shards: ranks of a data-parallel job, chunks of an
# out-of-core batch.
def cd_statistics_numpy(v, W, b_vis, b_hid, *, k: int, seed: int, first: int, out, data_scale: float,
                        chains_scale: float, persistent_chains=None, first_row: int = 0, first_chain: int = 0,
                        model_term: bool = True, binary_products: bool | None = None):
    """Adds one shard's CD-k / PCD-k statistics to ``out = (dW, db_vis, db_hid)``:
    ``data_scale`` times the data sums (``P(h | v)`` with v) minus ``chains_scale`` times the
    model sums (the chains after k steps, with ``P(h | v_k)``), drawing from offsets ``first ..
    first + 2 k`` of stream ``seed`` as :func:`cd_gradients` does, rows and chains numbered from
    ``first_row`` and ``first_chain``.

    PCD: ``persistent_chains`` (C-contiguous, W's dtype) are advanced in place, and with
    ``model_term=False`` only the data term is added (a batch's later chunks: the chains run
    once per batch). CD (no persistent chains): the chains are v's rows, restarted from
    h ~ P(h | v) (row r of v is chain ``first_row + r``). Returns the advanced chains (CD: the
    last hidden states drawn, or None when the shard is empty). Compiled
    (csrc/rbm_statistics.cpp): products with a 0/1 operand go to binary_matmul where it pays
    (``binary_products``, default as :func:`cd_epoch`'s)."""
    dW, db_vis, db_hid = out
    dt = W.dtype.type
    persistent = persistent_chains is not None
    chains = persistent_chains if persistent else np.empty((v.shape[0], W.shape[0]), W.dtype)
    _cpu.C.rbm_batch_statistics(W, b_vis, b_hid, v, chains, persistent, dW, db_vis, db_hid, int(k), dt(data_scale),
                                dt(chains_scale), seed, first, first_row, first_chain,
                                _cpu.binary_products_default() if binary_products is None else binary_products,
                                model_term)
    return chains if v.shape[0] or persistent else None


def _cd_gradients_cuda(pl, v, W, b_vis, b_hid, k, generator, persistent_chains) -> CDGradients:
    """The CPU code above, line for line, on CuPy arrays."""
    import cupy as cp

    from .._native import cuda as _cuda

    checks = DeviceChecks()
    W, b_vis, b_hid = rbm_parameters_cuda(pl, W, b_vis, b_hid, checks=checks)
    v = float_array_cuda(pl.array(v, "v"), "v", ndim=2, dtype=W.dtype, allow_empty=False, checks=checks)
    if v.shape[1] != W.shape[1]:
        raise ValueError(f"v must have {W.shape[1]} columns (n_visible of W), got shape {v.shape}")
    k = positive_int(k, "k", maximum=INT32_MAX)
    chains = None
    if persistent_chains is not None:
        chains = float_array_cuda(pl.array(persistent_chains, "persistent_chains"), "persistent_chains", ndim=2,
                                  dtype=W.dtype, allow_empty=False, checks=checks)
        if chains.shape[1] != W.shape[0]:
            raise ValueError(f"persistent_chains must have {W.shape[0]} columns (n_hidden), got {chains.shape}")
    checks.raise_first()
    gen = as_generator(generator)
    seed, first = gen.seed, gen.take(2 * k + 1)

    hidden_pos = cp.empty((v.shape[0], W.shape[0]), W.dtype)
    _cuda.gemm("N", "T", v, W, hidden_pos)
    if chains is None:
        chains = cp.empty_like(hidden_pos)
        _cuda.bernoulli(hidden_pos, b_hid, hidden_pos, chains, seed=seed, offset=first)
    else:
        chains = chains.copy()
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


# ---- the training epoch -----------------------------------------------------------------------
def offsets_per_epoch(n_samples: int, batch_size: int, cd_k: int) -> int:
    """Philox offsets one :func:`cd_epoch` takes: ``2 cd_k + 1`` per mini-batch."""
    return -(-n_samples // batch_size) * (2 * cd_k + 1)


def cd_epoch(weights, visible_bias, hidden_bias, data, *, batch_size: int, cd_k: int = 1, learning_rate: float,
             momentum: float = 0.0, weight_decay: float = 0.0, chains=None, velocities=None, generator=None,
             binary_products: bool | None = None, hidden_slices: bool = True, check_input: bool = True) -> None:
    """One CD-k / PCD-k pass over ``data``, updating the parameters in place (like an optimiser
    step): consecutive mini-batches of ``batch_size`` rows (the last may be shorter), each the
    :func:`cd_gradients` estimate followed by a momentum / weight-decay step.

    Per batch, with ``g`` the gradient estimate and ``lr`` the learning rate:
    ``velocity = momentum * velocity + lr * g`` (``- lr * weight_decay * W`` for the weights),
    ``param += velocity``; without ``velocities``, ``param += lr * g`` (and the decay).

    Parameters
    ----------
    weights : array of shape (n_hidden, n_visible)
    visible_bias : array of shape (n_visible,)
    hidden_bias : array of shape (n_hidden,)
        The parameters, updated in place: C-contiguous, writeable, one dtype (float32 or
        float64); never converted (a converted copy would not be the caller's model).
    data : array of shape (n_samples, n_visible)
        Converted once to the parameters' dtype; need not be binary.
    batch_size : int >= 1
    cd_k : int >= 1
        Gibbs steps per negative phase.
    learning_rate : float > 0
    momentum : float in [0, 1)
        Used only with ``velocities``.
    weight_decay : float >= 0
        L2 penalty on the weights (not the biases).
    chains : array of shape (n_chains, n_hidden), optional
        Hidden states of persistent chains (PCD), advanced in place; None for CD (chains
        restarted from the data of each batch).
    velocities : tuple of 3 arrays shaped like the parameters, optional
        Momentum buffers, updated in place.
    generator : fastgen.Generator, int or None
        Takes :func:`offsets_per_epoch` offsets, ``2 cd_k + 1`` per batch as in
        :func:`cd_gradients` (batch i starts at ``first + i (2 cd_k + 1)``).
    binary_products : bool, optional
        Products with a 0/1 operand as binary_matmul where it beats BLAS (True) or all on BLAS
        (False); the two agree up to rounding. Default: True unless the environment sets
        FASTGEN_DENSE_PRODUCTS=1. CPU only.
    hidden_slices : bool
        Let small batches (data and chains at most ``C.sliced_max_rows`` rows) run as one
        parallel region with the hidden units split among the threads (csrc/rbm_sliced.cpp)
        instead of one product at a time; same result up to rounding. CPU only.
    check_input : bool
        False skips every check, for loops over arrays the caller has validated: NumPy (or
        CuPy, all on one device) parameters, chains and velocities as described above and
        ``data`` C-contiguous in their dtype, scalars in range.

    CuPy input (or any CUDA array) runs the pass with cuBLAS GEMMs and the CUDA sampling
    kernel (:func:`fastgen._native.cuda.train_epoch`; replayed as a CUDA graph from the second
    identical pass on) on the current stream, drawing from the same counters.
    """
    velocities = tuple(velocities) if velocities is not None else None
    if check_input:
        pl = placement(weights=weights, visible_bias=visible_bias, hidden_bias=hidden_bias, data=data, chains=chains,
                       **dict(zip(("weights_velocity", "visible_bias_velocity", "hidden_bias_velocity"),
                                  velocities or ())))
        with pl.activate():
            args = _checked_epoch_arguments(pl, weights, visible_bias, hidden_bias, data, batch_size, cd_k,
                                            learning_rate, momentum, weight_decay, chains, velocities)
            binary_products = None if binary_products is None else flag(binary_products, "binary_products")
            hidden_slices = flag(hidden_slices, "hidden_slices")
            return _epoch(*args, generator, binary_products, hidden_slices)
    return _epoch(weights, visible_bias, hidden_bias, data, batch_size, cd_k, learning_rate, momentum, weight_decay,
                  chains, velocities, generator, binary_products, hidden_slices)


def _epoch(weights, visible_bias, hidden_bias, data, batch_size, cd_k, learning_rate, momentum, weight_decay, chains,
           velocities, generator, binary_products, hidden_slices) -> None:
    gen = as_generator(generator)
    seed, offset = gen.seed, gen.take(offsets_per_epoch(data.shape[0], batch_size, cd_k))
    if not isinstance(weights, np.ndarray):
        from .._native import cuda as _cuda

        _cuda.train_epoch(weights, visible_bias, hidden_bias, data, batch_size=int(batch_size), cd_k=int(cd_k),
                          lr=learning_rate, momentum=momentum, weight_decay=weight_decay, chains=chains,
                          velocities=velocities, seed=seed, first=offset)
        return
    if binary_products is None:
        binary_products = _cpu.binary_products_default()
    dt = weights.dtype.type
    weights_velocity, visible_bias_velocity, hidden_bias_velocity = velocities or (None, None, None)
    _cpu.C.rbm_train_batches(
        weights=weights, visible_bias=visible_bias, hidden_bias=hidden_bias, weights_velocity=weights_velocity,
        visible_bias_velocity=visible_bias_velocity, hidden_bias_velocity=hidden_bias_velocity,
        persistent_chains=chains, data=data, batch_size=int(batch_size), cd_k=int(cd_k),
        learning_rate=dt(learning_rate), momentum=dt(momentum), weight_decay=dt(weight_decay), seed=seed,
        offset=offset, binary_products=binary_products, hidden_slices=hidden_slices)


def _checked_epoch_arguments(pl, weights, visible_bias, hidden_bias, data, batch_size, cd_k, learning_rate, momentum,
                             weight_decay, chains, velocities):
    """The arguments of :func:`cd_epoch` in its compute form (NumPy or CuPy views of the
    caller's arrays), or a ValueError / TypeError naming the first bad one."""
    W = _trained_array(pl, weights, "weights", ndim=2)
    n_hidden, n_visible = W.shape
    for axis, what in ((0, "rows (n_hidden)"), (1, "columns (n_visible)")):
        check_int32_extent(W.shape[axis], "weights", what)
    b = _trained_array(pl, visible_bias, "visible_bias", shape=(n_visible,), dtype=W.dtype)
    c = _trained_array(pl, hidden_bias, "hidden_bias", shape=(n_hidden,), dtype=W.dtype)
    check = float_array_cuda if pl.cuda else float_array
    x = check(pl.array(data, "data"), "data", ndim=2, dtype=W.dtype)
    if x.shape[1] != n_visible:
        raise ValueError(f"data must have {n_visible} columns (n_visible of weights), got shape {x.shape}")
    batch_size = positive_int(batch_size, "batch_size", maximum=INT32_MAX)
    cd_k = positive_int(cd_k, "cd_k", maximum=INT32_MAX)
    learning_rate = real(learning_rate, "learning_rate", low=0.0, low_open=True)
    momentum = real(momentum, "momentum", low=0.0, high=1.0)
    if momentum >= 1.0:
        raise ValueError(f"momentum must be < 1, got {momentum}")
    weight_decay = real(weight_decay, "weight_decay", low=0.0)
    if chains is not None:
        chains = _trained_array(pl, chains, "chains", ndim=2, dtype=W.dtype)
        if chains.shape[1] != n_hidden or chains.shape[0] < 1:
            raise ValueError(f"chains must have shape (n_chains >= 1, {n_hidden}), got {chains.shape}")
    if velocities is not None:
        if len(velocities) != 3:
            raise ValueError(f"velocities must be 3 arrays (weights, visible_bias, hidden_bias), got {len(velocities)}")
        velocities = tuple(_trained_array(pl, v, f"velocities[{i}]", shape=p.shape, dtype=W.dtype)
                           for i, (v, p) in enumerate(zip(velocities, (W, b, c))))
    return W, b, c, x, batch_size, cd_k, learning_rate, momentum, weight_decay, chains, velocities


def _trained_array(pl, a, name: str, *, ndim=None, shape=None, dtype=None):
    """The compute-form view of an array the epoch writes: never a copy, so C-contiguous,
    writeable, of ``dtype`` and ``shape`` (or ``ndim``) already."""
    view = pl.array(a, name)
    if dtype is None and view.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64 (updated in place, never converted), got {view.dtype}")
    if dtype is not None and view.dtype != dtype:
        raise TypeError(f"{name} must have the weights' dtype {np.dtype(dtype)}, got {view.dtype}")
    if shape is not None and view.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {view.shape}")
    if ndim is not None and view.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {view.shape}")
    if not view.flags.c_contiguous or not getattr(view.flags, "writeable", True):
        raise ValueError(f"{name} must be a writeable C-contiguous array (it is updated in place)")
    return view

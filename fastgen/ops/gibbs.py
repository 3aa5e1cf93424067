"""Block Gibbs sampling in a Bernoulli-Bernoulli RBM, the whole k-step loop in compiled code
(CPU) or without per-step host work (CUDA: a replayed CUDA graph, or one fused kernel for RBMs
whose weights fit in shared memory)."""
from __future__ import annotations

import numpy as np

from .._backend import placement, to_numpy, wrap_like
from .._checks import INT32_MAX, as_generator, flag, positive_int
from .._native import cpu as _cpu
from .validation import DeviceChecks, float_array, float_array_cuda, rbm_parameters, rbm_parameters_cuda

_METHODS = ("auto", "fused", "graph", "eager")


def gibbs(v, W, b_vis, b_hid, steps: int = 1, *, generator=None, clamp=None, return_hidden: bool = False,
          method: str = "auto", binary_products: bool | None = None):
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
    method : {"auto", "fused", "graph", "eager"}
        CUDA only (ignored on the CPU): how the k steps run. "fused": one kernel, W in shared
        memory (small RBMs); "graph": cuBLAS GEMMs + sampling kernels, captured in a CUDA graph
        on the second identical call and replayed after that; "eager": launched step by step.
        "auto" picks (see :func:`fastgen._native.cuda.gibbs_method`). All use the same counters; they
        differ only in the rounding of the dot products. On the CPU, a call of several steps
        updates v @ W^T by the visible units that changed since the previous step when they are
        few (summing it afresh after at most 8 updates), so it draws what chained 1-step calls
        draw up to that rounding too.
    binary_products : bool, optional
        CPU only: products with the sampled 0/1 states as binary_matmul where it beats BLAS
        (True) or on BLAS (False); they agree up to rounding. Default: True unless the
        environment sets FASTGEN_DENSE_PRODUCTS=1.

    Returns
    -------
    v_k : array like ``v`` (dtype of W, v's framework and device), and P(h | v_k) when
    ``return_hidden``.
    """
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    return_hidden = flag(return_hidden, "return_hidden")
    binary_products = None if binary_products is None else flag(binary_products, "binary_products")
    pl = placement(v=v, W=W, b_vis=b_vis, b_hid=b_hid, clamp=clamp)
    if pl.cuda:
        with pl.activate():
            return _gibbs_cuda(pl, v, W, b_vis, b_hid, steps, generator, clamp, return_hidden, method)
    W, b_vis, b_hid = rbm_parameters(W, b_vis, b_hid)
    # rows: a BLAS dimension (32-bit); steps: the kernel's int
    v_arr = float_array(v, "v", ndim=2, dtype=W.dtype, int32_axes=((0, "rows"),))
    if v_arr.shape[1] != W.shape[1]:
        raise ValueError(f"v must have {W.shape[1]} columns (n_visible of W), got shape {v_arr.shape}")
    steps = positive_int(steps, "steps", minimum=0, maximum=INT32_MAX)
    mask = None
    if clamp is not None:
        try:
            mask = to_numpy(clamp, "clamp")
        except ValueError as exc:
            raise ValueError(f"clamp could not be read as an array: {exc}") from exc
        if mask.dtype != np.bool_:
            raise TypeError(f"clamp must be a boolean mask, got dtype {mask.dtype}")
        if mask.shape not in ((W.shape[1],), v_arr.shape):
            raise ValueError(f"clamp must have shape ({W.shape[1]},) or {v_arr.shape}, got {mask.shape}")
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
    gen = as_generator(generator)
    out = np.empty_like(v_arr)
    hidden = np.empty((v_arr.shape[0], W.shape[0]), W.dtype) if return_hidden else None
    if binary_products is None:
        binary_products = _cpu.binary_products_default()
    _cpu.C.rbm_gibbs(weights=W, visible_bias=b_vis, hidden_bias=b_hid, visible_in=v_arr, visible_out=out,
                     hidden_probs_out=hidden, clamp=mask, steps=steps, seed=gen.seed, offset=gen.take(2 * steps),
                     binary_products=binary_products)
    if return_hidden:
        return wrap_like(out, v), wrap_like(hidden, v)
    return wrap_like(out, v)


def _gibbs_cuda(pl, v, W, b_vis, b_hid, steps, generator, clamp, return_hidden, method):
    import cupy as cp

    from .._native import cuda as _cuda

    checks = DeviceChecks()
    W, b_vis, b_hid = rbm_parameters_cuda(pl, W, b_vis, b_hid, checks=checks)
    v_arr = float_array_cuda(pl.array(v, "v"), "v", ndim=2, dtype=W.dtype, checks=checks)
    if v_arr.shape[1] != W.shape[1]:
        raise ValueError(f"v must have {W.shape[1]} columns (n_visible of W), got shape {v_arr.shape}")
    steps = positive_int(steps, "steps", minimum=0, maximum=INT32_MAX)
    mask = None
    if clamp is not None:
        mask = pl.array(clamp, "clamp")
        if mask.dtype != np.bool_:
            raise TypeError(f"clamp must be a boolean mask, got dtype {mask.dtype}")
        if mask.shape not in ((W.shape[1],), v_arr.shape):
            raise ValueError(f"clamp must have shape ({W.shape[1]},) or {v_arr.shape}, got {mask.shape}")
        mask = cp.ascontiguousarray(mask, dtype=cp.uint8)
    checks.raise_first()
    gen = as_generator(generator)
    out = v_arr.copy()
    first = gen.take(2 * steps)
    _cuda.gibbs(out, W, b_vis, b_hid, steps, seed=gen.seed, first=first, clamp=mask, method=method)
    if return_hidden:
        hidden = cp.empty((out.shape[0], W.shape[0]), W.dtype)
        if hidden.size:
            _cuda.hidden_probs(out, W, b_hid, hidden)
        return pl.wrap(out), pl.wrap(hidden)
    return pl.wrap(out)

"""CUDA k-step block-Gibbs sampling of an RBM: the per-step GEMMs (cuBLAS) and sampling kernels,
replayed from a CUDA graph on repeated calls (:mod:`fastgen._native.graphs`), or all k steps in
one fused kernel (kernels/gibbs.cu) when W fits in shared memory. Every method uses the counters
of csrc/gibbs.cpp: step s samples h at offset first + 2 s, v at first + 2 s + 1.
"""
from __future__ import annotations

import os

import numpy as np

from .cuda_runtime import (STREAM_FIELDS, THREADS_PER_BLOCK, current_device, gemm, launch, pack_record, row_stride,
                           shared_memory_optin, sm_count, stream_fields, struct_dtypes, suffix)
from .cuda_sampling import bernoulli
from .graphs import Workspaces, graph_key, run_recorded

# kernels/include/fastgen/params/gibbs.h
STRUCTS = {
    "GibbsFusedParams": (("weights", "p"), ("visible_bias", "p"), ("hidden_bias", "p"), ("visible", "p"),
                         ("clamp", "p"), ("rows", "i"), ("n_visible", "i"), ("n_hidden", "i"),
                         ("visible_stride", "i"), ("clamp_stride", "i"), ("steps", "i")) + STREAM_FIELDS,
}
DTYPES = struct_dtypes(STRUCTS)


def fused_gibbs_shared_bytes(n_visible: int, n_hidden: int, dtype) -> int:
    """Shared memory of the fused kernel: W with an odd row stride, then one chain's v and h."""
    ldw = n_visible | 1
    return (n_hidden * ldw + n_visible + n_hidden) * np.dtype(dtype).itemsize


def fused_gibbs_fits(n_visible: int, n_hidden: int, dtype) -> bool:
    return fused_gibbs_shared_bytes(n_visible, n_hidden, dtype) <= shared_memory_optin(current_device())


def gibbs_fused(v, W, b_vis, b_hid, steps: int, *, seed: int, offset: int, clamp=None) -> None:
    """All ``steps`` block-Gibbs steps of every chain (rows of v, updated in place) in one kernel,
    W in shared memory."""
    rows, nv = v.shape
    nh = W.shape[0]
    params = pack_record(DTYPES["GibbsFusedParams"], weights=W, visible_bias=b_vis, hidden_bias=b_hid, visible=v,
                         clamp=clamp, rows=rows, n_visible=nv, n_hidden=nh, visible_stride=row_stride(v),
                         clamp_stride=(row_stride(clamp) if clamp is not None and clamp.ndim == 2 else 0),
                         steps=int(steps), **stream_fields(seed, offset))
    shared = fused_gibbs_shared_bytes(nv, nh, v.dtype)
    launch("gibbs", f"fg_gibbs_fused_{suffix(v.dtype)}", rows, params, block=THREADS_PER_BLOCK, shared=shared,
           grid=min(rows, sm_count(current_device()) * 8))


def gibbs_method(rows: int, n_visible: int, n_hidden: int, steps: int, dtype, method: str = "auto") -> str:
    """Which Gibbs implementation runs: "fused" (one kernel, W in shared memory), "graph" (the
    per-step GEMMs + sampling kernels, replayed from a CUDA graph on repeated calls) or "eager".

    ``auto``: fused when W fits in shared memory and there are at most 8 chains per
    multiprocessor (each chain is one thread block, and with many chains the GEMM path's tensor
    throughput wins); graph otherwise. These crossovers are first guesses, to be replaced by the
    measurements of ``python -m bench rbm --device cuda`` (see docs/GPU.md).
    ``FASTGEN_GIBBS_METHOD`` overrides ``auto``.
    """
    if method == "auto":
        method = os.environ.get("FASTGEN_GIBBS_METHOD", "auto").strip().lower() or "auto"
    if method == "auto":
        if fused_gibbs_fits(n_visible, n_hidden, dtype) and rows <= 8 * sm_count(current_device()):
            return "fused"
        return "graph"
    if method not in ("fused", "graph", "eager"):
        raise ValueError(f"method must be 'auto', 'fused', 'graph' or 'eager', got {method!r}")
    if method == "fused" and not fused_gibbs_fits(n_visible, n_hidden, dtype):
        raise ValueError(f"method='fused' needs W in shared memory: {n_hidden}x{n_visible} {np.dtype(dtype)} needs "
                         f"{fused_gibbs_shared_bytes(n_visible, n_hidden, dtype)} bytes, the device has "
                         f"{shared_memory_optin(current_device())}")
    return method


def gibbs(v_out, W, b_vis, b_hid, steps: int, *, seed: int, first: int, clamp=None, method: str = "auto") -> str:
    """``steps`` block-Gibbs steps on v_out in place (CuPy, C-contiguous, W's dtype); the counters of
    csrc/gibbs.cpp: step s samples h at offset first + 2 s, v at first + 2 s + 1. Returns the
    method used."""
    import cupy as cp

    n, nv = v_out.shape
    nh = W.shape[0]
    if n == 0 or steps == 0:
        return "eager"
    method = gibbs_method(n, nv, nh, steps, v_out.dtype, method)
    if method == "fused":
        gibbs_fused(v_out, W, b_vis, b_hid, steps, seed=seed, offset=first, clamp=clamp)
        return "fused"
    clamp_shape = None if clamp is None else tuple(clamp.shape)
    ws_key = ("gibbs", current_device(), int(cp.cuda.get_current_stream().ptr), v_out.dtype.str, n, nv, nh,
              clamp_shape)

    def make():
        return {"v": cp.empty((n, nv), v_out.dtype), "v_pre": cp.empty((n, nv), v_out.dtype),
                "h": cp.empty((n, nh), v_out.dtype),
                "clamp": None if clamp is None else cp.empty(clamp.shape, cp.uint8)}

    ws = Workspaces.get(ws_key, make) if method == "graph" else make()
    v, v_pre, h = ws["v"], ws["v_pre"], ws["h"]
    mask = ws["clamp"]
    if mask is not None:
        mask[...] = clamp
    v[...] = v_out

    def body(rng, base):
        for s in range(steps):
            gemm("N", "T", v, W, h)                     # h = v @ W^T
            bernoulli(h, b_hid, None, h, seed=seed, offset=base + 2 * s, rng=rng)
            gemm("N", "N", h, W, v_pre)                 # v_pre = h @ W
            bernoulli(v_pre, b_vis, None, v, seed=seed, offset=base + 2 * s + 1, rng=rng, clamp=mask)

    if method == "eager":
        body(None, first)
        used = "eager"
    else:
        key = graph_key("gibbs", (W, b_vis, b_hid, *ws.values()), (steps,))
        used = run_recorded(key, body, seed, first, keep=ws)
    v_out[...] = v
    return used


def hidden_probs(v, W, b_hid, out) -> None:
    """out = sigmoid(v @ W^T + b_hid)."""
    gemm("N", "T", v, W, out)
    bernoulli(out, b_hid, out, None)

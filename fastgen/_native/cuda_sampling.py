"""CUDA launchers of the stream fills and the samplers, kernels/sampling.cu: raw Philox words,
uniforms and normals, the fused bias + sigmoid + Bernoulli draw and the Gaussian draw, with the
counters of csrc/sampling.cpp (bitwise the CPU's draws for the same seed and offset).

Every function takes CuPy arrays, writes its outputs in place and launches on CuPy's current
stream; ``rng`` (a device {seed, offset} buffer) makes the offsets relative to it, as a replayed
CUDA graph needs (:mod:`fastgen._native.graphs`).
"""
from __future__ import annotations

import numpy as np

from .cuda_runtime import STREAM_FIELDS, launch, pack_record, row_stride, stream_fields, struct_dtypes, suffix

# kernels/include/fastgen/params/sampling.h
STRUCTS = {
    "FillParams": (("out", "p"), ("n", "i")) + STREAM_FIELDS,
    "BernoulliGpuParams": (("input", "p"), ("bias", "p"), ("probs", "p"), ("states", "p"), ("clamp", "p"),
                           ("rows", "i"), ("cols", "i"), ("input_stride", "i"), ("probs_stride", "i"),
                           ("states_stride", "i"), ("clamp_stride", "i"), ("from_logits", "i")) + STREAM_FIELDS,
    "GaussianGpuParams": (("mean", "p"), ("bias", "p"), ("stddev", "p"), ("stddev_scalar", "d"), ("out", "p"),
                          ("rows", "i"), ("cols", "i"), ("mean_stride", "i"), ("out_stride", "i")) + STREAM_FIELDS,
}
DTYPES = struct_dtypes(STRUCTS)


def _pack(struct: str, **values) -> np.ndarray:
    return pack_record(DTYPES[struct], **values)


def fill_bits(out, seed: int, offset: int, rng=None) -> None:
    """out (uint32, contiguous) = the Philox words of elements 0..n-1 of (seed, offset)."""
    params = _pack("FillParams", out=out, n=out.size, **stream_fields(seed, offset, rng))
    launch("sampling", "fg_fill_bits", -(-out.size // 4), params)


def fill_uniform(out, seed: int, offset: int, rng=None) -> None:
    """out (float, contiguous) = the uniforms in (0, 1) of elements 0..n-1 of (seed, offset)."""
    params = _pack("FillParams", out=out, n=out.size, **stream_fields(seed, offset, rng))
    launch("sampling", f"fg_fill_uniform_{suffix(out.dtype)}", -(-out.size // 4), params)


def fill_normal(out, seed: int, offset: int, rng=None) -> None:
    """out (float, contiguous) = the standard normals of elements 0..n-1 of (seed, offset)."""
    params = _pack("FillParams", out=out, n=out.size, **stream_fields(seed, offset, rng))
    launch("sampling", f"fg_fill_normal_{suffix(out.dtype)}", -(-out.size // 4), params)


def bernoulli(x, bias=None, probs=None, states=None, *, from_logits: bool = True, seed: int = 0, offset: int = 0,
              rng=None, clamp=None) -> None:
    """The fused bias + sigmoid + draw of csrc/sampling.cpp on [rows, cols] arrays (rows may be
    strided, columns contiguous); probs and/or states may alias x. ``clamp`` (uint8, [cols] or
    [rows, cols]): nonzero entries of states are left untouched."""
    rows, cols = (x.shape if x.ndim == 2 else (1, x.shape[0]))
    params = _pack(
        "BernoulliGpuParams", input=x, bias=bias, probs=probs, states=states, clamp=clamp,
        rows=rows, cols=cols, input_stride=row_stride(x),
        probs_stride=row_stride(probs) if probs is not None else 0,
        states_stride=row_stride(states) if states is not None else 0,
        clamp_stride=(row_stride(clamp) if clamp is not None and clamp.ndim == 2 else 0),
        from_logits=int(bool(from_logits)), **stream_fields(seed, offset, rng))
    launch("sampling", f"fg_bernoulli_{suffix(x.dtype)}", -(-(rows * cols) // 4), params)


def gaussian(mean, out, *, bias=None, std=None, std_scalar: float = 0.0, seed: int = 0, offset: int = 0) -> None:
    """out = mean (+ bias) + std * the element's normal, std per column ([cols]) or ``std_scalar``."""
    rows, cols = (mean.shape if mean.ndim == 2 else (1, mean.shape[0]))
    params = _pack("GaussianGpuParams", mean=mean, bias=bias, stddev=std, stddev_scalar=float(std_scalar), out=out,
                   rows=rows, cols=cols, mean_stride=row_stride(mean), out_stride=row_stride(out),
                   **stream_fields(seed, offset))
    launch("sampling", f"fg_gaussian_{suffix(mean.dtype)}", -(-(rows * cols) // 4), params)

"""Sampling ops: fused sigmoid + Bernoulli draw, Gaussian draw.

NumPy / CPU torch input runs the compiled CPU kernels; CUDA input (CuPy, torch CUDA, DLPack or
``__cuda_array_interface__`` producers) runs kernels/sampling.cu on the caller's current stream.
Both draw element (r, c) from the same Philox counter, so for the same (seed, offset) the
uniforms are bitwise equal and the states differ only where a probability lies within float
rounding of its uniform.
"""
from __future__ import annotations

import numpy as np

from .._backend import placement, wrap_like
from .._checks import as_generator, finite_in_dtype, flag, is_finite_real
from .._native import cpu as _cpu
from .validation import DeviceChecks, float_array, float_array_cuda, vector, vector_cuda

_OUTPUTS = ("states", "probs", "both")


# ---- trusted entry points (NumPy, validated by the caller) ------------------------------------
# For loops that call a sampler per mini-batch on arrays they own: every array C-contiguous, of
# one dtype (float32 or float64), 2-D (n, m) or 1-D (m,) with the vectors of shape (m,), the
# outputs writeable and of the input's shape. Nothing is checked here, and _C is called with
# positional arguments: pybind11 matches keywords once per overload (float32, then float64), a
# cost these small per-batch calls would pay every time (docs/performance.md).
def sample_bernoulli_numpy(x: np.ndarray, *, bias=None, probs=None, states=None, from_logits: bool = True,
                           seed: int = 0, offset: int = 0, first_row: int = 0) -> None:
    """The kernel of :func:`sample_bernoulli`: writes ``probs`` (sigmoid(x + bias), when given)
    and ``states`` (0/1 draws, when given; offset ``offset`` of stream ``seed``). ``probs`` may
    be ``x`` itself (in place); with ``from_logits=False``, ``x`` holds probabilities. Row r
    draws as row ``first_row + r`` of a taller matrix would (a shard of a larger batch)."""
    _cpu.C.sample_bernoulli(x, bias, probs, states, from_logits, seed, offset, first_row)


def sigmoid_numpy(x: np.ndarray, *, bias=None, out: np.ndarray) -> np.ndarray:
    """``out = sigmoid(x + bias)`` (the samplers' stable sigmoid; ``out`` may be ``x``); returns
    ``out``. Draws nothing."""
    _cpu.C.sample_bernoulli(x, bias, out, None, True, 0, 0)
    return out


def sample_gaussian_numpy(mean: np.ndarray, *, out: np.ndarray, bias=None, std=None, std_scalar: float = 0.0,
                          seed: int, offset: int, first_row: int = 0) -> np.ndarray:
    """The kernel of :func:`sample_gaussian`: ``out = mean + bias + std * eps`` with ``std`` a
    per-column vector, or ``std_scalar`` when ``std`` is None; ``out`` may be ``mean``; row r
    draws as row ``first_row + r``. Returns ``out``."""
    _cpu.C.sample_gaussian(mean, bias, std, std_scalar, out, seed, offset, first_row)
    return out


def sample_bernoulli(x, bias=None, *, from_logits: bool = True, output: str = "states", generator=None):
    """Bernoulli states from logits (fused bias add + sigmoid + draw) or from probabilities.

    Parameters
    ----------
    x : array of shape (n, m) or (m,)
        Logits (pre-activations) when ``from_logits``, else probabilities in [0, 1].
    bias : array of shape (m,), optional
        Added to every row of the logits before the sigmoid (``from_logits`` only).
    output : {"states", "probs", "both"}
        What to return: the 0/1 states, the probabilities sigmoid(x + bias), or both as a
        ``(probs, states)`` pair. "probs" draws nothing.
    generator : fastgen.Generator, int or None
        The stream; one offset is taken when states are drawn. Element (r, c) uses Philox
        element index ``r * m + c``; state = 1 iff uniform < p.

    Returns
    -------
    Arrays of x's shape and float dtype, in x's framework and on its device.
    """
    if not isinstance(output, str) or output not in _OUTPUTS:
        raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
    from_logits = flag(from_logits, "from_logits")
    pl = placement(x=x, bias=bias)
    if pl.cuda:
        with pl.activate():
            return _bernoulli_cuda(pl, x, bias, from_logits, output, generator)
    a = float_array(x, "x", ndim=(1, 2))
    if not from_logits:
        if bias is not None:
            raise ValueError("bias is only used with from_logits=True")
        if output != "states":
            raise ValueError("with from_logits=False the probabilities are the input: use output='states'")
        if a.size and (a.min() < 0 or a.max() > 1):
            raise ValueError("x must hold probabilities in [0, 1] when from_logits=False")
    b = None if bias is None else vector(bias, "bias", a.shape[-1], a.dtype)
    probs = np.empty_like(a) if output in ("probs", "both") else None
    states = np.empty_like(a) if output in ("states", "both") else None
    seed, offset = 0, 0
    if states is not None:
        gen = as_generator(generator)
        seed, offset = gen.seed, gen.take()
    sample_bernoulli_numpy(a, bias=b, probs=probs, states=states, from_logits=bool(from_logits), seed=seed,
                           offset=offset)
    if output == "states":
        return wrap_like(states, x)
    if output == "probs":
        return wrap_like(probs, x)
    return wrap_like(probs, x), wrap_like(states, x)


def sample_gaussian(mean, std=1.0, *, bias=None, generator=None):
    """Gaussian draws ``mean + bias + std * eps`` with eps ~ N(0, 1) (Box-Muller on Philox).

    Parameters
    ----------
    mean : array of shape (n, m) or (m,)
    std : float or array of shape (m,)
        Standard deviation, one value or one per column; must be >= 0.
    bias : array of shape (m,), optional
    generator : fastgen.Generator, int or None
        Takes one offset; element (r, c) uses normal number ``r * m + c`` of the call.

    Returns
    -------
    Array of mean's shape and float dtype, in mean's framework and on its device.
    """
    pl = placement(mean=mean, std=None if np.isscalar(std) else std, bias=bias)
    if pl.cuda:
        with pl.activate():
            return _gaussian_cuda(pl, mean, std, bias, generator)
    a = float_array(mean, "mean", ndim=(1, 2))
    b = None if bias is None else vector(bias, "bias", a.shape[-1], a.dtype)
    if np.ndim(std) == 0:
        std_scalar = float(std) if is_finite_real(std) else None  # None, strings, 2**2000: refused below
        if std_scalar is None or std_scalar < 0:
            raise ValueError(f"std must be a finite number >= 0, got {std!r}")
        finite_in_dtype(std_scalar, "std", a.dtype)  # the kernel computes in mean's dtype
        std_arr = None
    else:
        std_arr = vector(std, "std", a.shape[-1], a.dtype)
        if (std_arr < 0).any():
            raise ValueError("std must be >= 0 everywhere")
        std_scalar = 0.0
    gen = as_generator(generator)
    out = np.empty_like(a)
    sample_gaussian_numpy(a, out=out, bias=b, std=std_arr, std_scalar=std_scalar, seed=gen.seed, offset=gen.take())
    return wrap_like(out, mean)


# ---- CUDA -----------------------------------------------------------------------------------
def _bernoulli_cuda(pl, x, bias, from_logits, output, generator):
    import cupy as cp

    from .._native import cuda as _cuda

    checks = DeviceChecks()
    a = float_array_cuda(pl.array(x, "x"), "x", ndim=(1, 2), checks=checks)
    if not from_logits:
        if bias is not None:
            raise ValueError("bias is only used with from_logits=True")
        if output != "states":
            raise ValueError("with from_logits=False the probabilities are the input: use output='states'")
        if a.size:
            checks.require(((a >= 0) & (a <= 1)).all(),
                           ValueError("x must hold probabilities in [0, 1] when from_logits=False"))
    b = None if bias is None else vector_cuda(pl.array(bias, "bias"), "bias", a.shape[-1], a.dtype, checks=checks)
    checks.raise_first()
    probs = cp.empty_like(a) if output in ("probs", "both") else None
    states = cp.empty_like(a) if output in ("states", "both") else None
    seed, offset = 0, 0
    if states is not None:
        gen = as_generator(generator)
        seed, offset = gen.seed, gen.take()
    _cuda.bernoulli(a, b, probs, states, from_logits=bool(from_logits), seed=seed, offset=offset)
    if output == "states":
        return pl.wrap(states)
    if output == "probs":
        return pl.wrap(probs)
    return pl.wrap(probs), pl.wrap(states)


def _gaussian_cuda(pl, mean, std, bias, generator):
    import cupy as cp

    from .._native import cuda as _cuda

    checks = DeviceChecks()
    a = float_array_cuda(pl.array(mean, "mean"), "mean", ndim=(1, 2), checks=checks)
    b = None if bias is None else vector_cuda(pl.array(bias, "bias"), "bias", a.shape[-1], a.dtype, checks=checks)
    std_arr, std_scalar = None, 0.0
    if np.isscalar(std):
        std_scalar = float(std) if is_finite_real(std) else None
        if std_scalar is None or std_scalar < 0:
            raise ValueError(f"std must be a finite number >= 0, got {std!r}")
    else:
        std_arr = vector_cuda(pl.array(std, "std"), "std", a.shape[-1], a.dtype, checks=checks)
        if std_arr.size:
            checks.require((std_arr >= 0).all(), ValueError("std must be >= 0 everywhere"))
    checks.raise_first()
    gen = as_generator(generator)
    out = cp.empty_like(a)
    _cuda.gaussian(a, out, bias=b, std=std_arr, std_scalar=std_scalar, seed=gen.seed, offset=gen.take())
    return pl.wrap(out)

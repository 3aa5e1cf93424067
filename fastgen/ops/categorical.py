"""Categorical sampling from logits: temperature, top-k and the draw fused in one kernel.

The draw is the Gumbel-max trick on the Philox stream (formula: kernels/include/fastgen/
categorical.h): row r returns ``argmax_c logit[r, c] - T * log(-log(1 - u[r, c]))``, which is
distributed as ``softmax(logits[r] / T)``, restricted to the row's ``top_k`` largest logits
when ``top_k`` is given (ties at the boundary go to the lower columns). ``u[r, c]`` comes from
Philox word ``r * n_categories + c`` of the call (one offset), whatever ``top_k``, mapped to the
open interval (0, 1) (``uniform_open01`` in sampling.h; not :meth:`Generator.uniform`'s [0, 1)),
so that neither logarithm is ever infinite.

CUDA input (CuPy, torch CUDA tensors, DLPack / ``__cuda_array_interface__`` producers) runs
kernels/categorical.cu on the caller's current stream (:mod:`fastgen._native.cuda_categorical`): the
same key formula on the same uniforms, so the draws are bitwise the CPU's for the same seed and
offset. The finiteness check there is one device reduction and a host synchronisation.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._native import cpu as _cpu
from .._backend import placement, wrap_like
from .validation import as_generator
from .validation import float_array, float_array_cuda, is_finite_real

__all__ = ["sample_categorical"]


def check_temperature(temperature, dtype=None) -> float:
    """A finite number > 0, and finite in ``dtype`` (the logits' float type) when given: the
    kernels compute in that type, where an overflowing temperature would make NaN keys."""
    if not is_finite_real(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if dtype is not None and temperature > float(np.finfo(dtype).max):
        raise ValueError(f"temperature must be finite in the logits' dtype {np.dtype(dtype).name} "
                         f"(at most {np.finfo(dtype).max:g}), got {temperature!r}")
    return float(temperature)


def check_top_k(top_k, n_categories: int) -> int:
    """``None`` -> 0 (no truncation, the kernel's convention); else an int in 1..n_categories."""
    if top_k is None:
        return 0
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or not 1 <= top_k <= n_categories:
        raise ValueError(f"top_k must be None or an integer in 1..{n_categories} (the number of categories), "
                         f"got {top_k!r}")
    return int(top_k)


def sample_categorical_numpy(logits: np.ndarray, temperature: float, top_k: int, seed: int, offset: int) -> np.ndarray:
    """The kernel call on validated input: C-contiguous float32/float64 logits of 1 or 2 dims,
    ``top_k`` 0 (all) or 1..n; returns int64 of shape ``logits.shape[:-1]``."""
    out = np.empty(logits.shape[:-1], dtype=np.int64)
    _cpu.C.sample_categorical(logits, out.reshape(-1), temperature, top_k, seed, offset)
    return out


def sample_categorical(logits, *, temperature: float = 1.0, top_k: int | None = None, generator=None):
    """One draw per row from ``softmax(logits / temperature)``, optionally over the top k only.

    Parameters
    ----------
    logits : array of shape (n, m) or (m,)
        Unnormalised log-probabilities of m >= 1 categories, finite; float32 or float64 are used
        as given (other real dtypes are converted, see ``fastgen.ops``).
    temperature : float > 0
        Divides the logits. Small values approach the argmax; 1 samples the model as is.
    top_k : int in 1..m, or None
        Keep only the k largest logits of each row (ties: lower columns first). None: all.
    generator : fastgen.Generator, int or None
        Takes one offset; column c of row r uses uniform number ``r * m + c``.

    Returns
    -------
    int64 array of shape (n,) (or a 0-d array for 1-D logits), in the framework of ``logits``.
    """
    pl = placement(logits=logits)
    if pl.cuda:
        with pl.activate():
            a = check_categories(float_array_cuda(pl.array(logits, "logits"), "logits", ndim=(1, 2)))
            t = check_temperature(temperature, a.dtype)
            k = check_top_k(top_k, a.shape[-1])
            gen = as_generator(generator)
            return pl.wrap(sample_categorical_cupy(a, t, k, gen.seed, gen.take()))
    a = check_categories(float_array(logits, "logits", ndim=(1, 2)))
    t = check_temperature(temperature, a.dtype)
    k = check_top_k(top_k, a.shape[-1])
    gen = as_generator(generator)
    out = sample_categorical_numpy(a, t, k, gen.seed, gen.take())
    return wrap_like(out, logits)


def check_categories(a):
    """``a`` (NumPy or CuPy logits) unless its last axis is empty."""
    if a.shape[-1] == 0:
        raise ValueError(f"logits must have at least one category (last axis), got shape {a.shape}")
    return a


# ---- CUDA (CuPy arrays; also the torch op's CUDA kernel) ------------------------------------
def sample_categorical_cupy(logits, temperature: float, top_k: int, seed: int, offset: int):
    """:func:`sample_categorical_numpy` for a CuPy array: C-contiguous float32/float64 logits of
    1 or 2 dims, validated; returns int64 of shape ``logits.shape[:-1]`` on the same device."""
    import cupy as cp

    from .._native import cuda_categorical as _cuda_categorical

    out = cp.empty(logits.shape[:-1], dtype=np.int64)
    _cuda_categorical.sample_categorical(logits.reshape(-1, logits.shape[-1]), out.reshape(-1),
                                         temperature=temperature, top_k=top_k, seed=seed, offset=offset)
    return out

"""Input validation shared by the ops: run once, before a kernel sees anything.

Conventions: float32 and float64 pass through (no copy when C-contiguous); other real numeric
dtypes (bool, integers, float16) are converted once to float64 (float16 to float32);
non-contiguous arrays are copied to C order; anything else is refused with a TypeError that
names the argument. The ``*_cuda`` variants apply the same rules to CuPy arrays (the CUDA paths'
compute form, see ``fastgen._backend``); NaN/inf checks there are one reduction on the device
and a synchronisation with the host.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._backend import to_numpy

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _float_checked(a, name: str, ndim, dtype, allow_empty: bool, finite: bool, ascontiguousarray, check_finite_fn):
    """The dtype / ndim / emptiness / finiteness rules of :func:`float_array`, for any array
    module (NumPy here, CuPy in :func:`float_array_cuda`): one set of rules and messages."""
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array (float32 or float64), got dtype {a.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {a.shape}")
    target = np.dtype(dtype) if dtype is not None else (
        a.dtype if a.dtype in FLOAT_DTYPES else np.dtype(np.float32 if a.dtype == np.float16 else np.float64)
    )
    a = ascontiguousarray(a, dtype=target)
    if not allow_empty and a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    if finite:
        check_finite_fn(a, name)
    return a


def _check_length(a, name: str, length: int):
    if a.shape[0] != length:
        raise ValueError(f"{name} must have shape ({length},), got {a.shape}")
    return a


def float_array(x, name: str, *, ndim=None, dtype=None, allow_empty: bool = True, finite: bool = True) -> np.ndarray:
    return _float_checked(to_numpy(x, name), name, ndim, dtype, allow_empty, finite, np.ascontiguousarray,
                          check_finite)


def check_finite(a: np.ndarray, name: str) -> None:
    """ValueError naming ``name`` if the C-contiguous float array ``a`` holds a NaN or infinity
    (one compiled pass; np.isfinite(a).all() allocates a boolean array first)."""
    from .. import _cpu

    if a.size and not _cpu.C.all_finite(a.reshape(-1)):
        raise ValueError(f"{name} contains NaN or infinity")


def vector(x, name: str, length: int, dtype) -> np.ndarray:
    return _check_length(float_array(x, name, ndim=1, dtype=dtype), name, length)


def positive_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def real(value, name: str, *, low=None, high=None, low_open=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def rbm_parameters(W, b_vis, b_hid, dtype=None):
    """weights [n_hidden, n_visible], visible bias [n_visible], hidden bias [n_hidden]."""
    W = float_array(W, "W", ndim=2, dtype=dtype)
    n_hidden, n_visible = W.shape
    return W, vector(b_vis, "b_vis", n_visible, W.dtype), vector(b_hid, "b_hid", n_hidden, W.dtype)


# ---- CUDA (CuPy arrays) ---------------------------------------------------------------------
def float_array_cuda(a, name: str, *, ndim=None, dtype=None, allow_empty: bool = True, finite: bool = True):
    """:func:`float_array` for a CuPy array ``a`` (same dtype rules, same messages)."""
    import cupy as cp

    def check_finite_cuda(arr, arg_name):
        if arr.size and not bool(cp.isfinite(arr).all()):
            raise ValueError(f"{arg_name} contains NaN or infinity")

    return _float_checked(a, name, ndim, dtype, allow_empty, finite, cp.ascontiguousarray, check_finite_cuda)


def vector_cuda(a, name: str, length: int, dtype):
    return _check_length(float_array_cuda(a, name, ndim=1, dtype=dtype), name, length)


def rbm_parameters_cuda(pl, W, b_vis, b_hid, dtype=None):
    """:func:`rbm_parameters` on the device of placement ``pl``."""
    W = float_array_cuda(pl.array(W, "W"), "W", ndim=2, dtype=dtype)
    n_hidden, n_visible = W.shape
    return (W, vector_cuda(pl.array(b_vis, "b_vis"), "b_vis", n_visible, W.dtype),
            vector_cuda(pl.array(b_hid, "b_hid"), "b_hid", n_hidden, W.dtype))

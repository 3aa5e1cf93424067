"""Input validation shared by the ops: run once, before a kernel sees anything.

Conventions: float32 and float64 pass through (no copy when C-contiguous); other real numeric
dtypes (bool, integers, float16) are converted once to float64 (float16 to float32);
non-contiguous arrays are copied to C order; anything else is refused with a TypeError that
names the argument. The ``*_cuda`` variants apply the same rules to CuPy arrays (the CUDA paths'
compute form, see ``fastgen._backend``); NaN/inf checks there are one reduction on the device
and a synchronisation with the host.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .._backend import to_numpy

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# The CPU kernels keep column (and, in transposed index lists, row) numbers as int32 and hand
# matrix dimensions to the Fortran BLAS as 32-bit ints (csrc/index_lists.h, binary.cpp,
# sparse_linear.cpp, blas.cpp): every such extent must stay at or below this.
INT32_MAX = 2**31 - 1


def check_int32_extent(value: int, name: str, what: str) -> int:
    """ValueError naming ``name`` unless ``value`` (a size: ``what`` describes it) fits the
    kernels' 32-bit indices. Checked on shapes, before anything is copied or allocated."""
    if int(value) > INT32_MAX:
        raise ValueError(f"{name} has {int(value)} {what}; fastgen's CPU kernels index them with 32-bit "
                         f"integers, so at most 2**31 - 1 = {INT32_MAX} are supported")
    return int(value)


def check_output_size(shape, name: str, itemsize: int = 8) -> tuple:
    """ValueError naming ``name`` (the argument that sets the size) unless an array of ``shape``
    can exist at all (NumPy's "array is too big" / "Maximum allowed dimension exceeded" would
    name nothing); a size that merely exceeds the memory at hand still raises MemoryError.
    Symbolic sizes (torch.compile's SymInts in fake kernels) are left alone, not specialised."""
    if not all(isinstance(d, (int, np.integer)) for d in shape):
        return tuple(shape)
    shape = tuple(int(d) for d in shape)
    total = 1
    for d in shape:
        total *= d
    if any(d < 0 for d in shape) or total * itemsize > np.iinfo(np.intp).max:
        raise ValueError(f"{name} gives an output of shape {shape}, too large for any array")
    return shape


def _as_array(x, name: str):
    """to_numpy, with NumPy's own conversion errors (ragged lists, unconvertible objects)
    re-raised naming the argument."""
    try:
        return to_numpy(x, name)
    except (ValueError, TypeError) as exc:
        if str(exc).startswith(name + " "):  # to_numpy's own messages name the argument already
            raise
        raise type(exc)(f"{name} could not be read as an array: {exc}") from exc


def _check_kind_and_shape(a, name: str, ndim, int32_axes) -> None:
    """A real numeric dtype, an allowed ndim (int or tuple of ints) and 32-bit extents."""
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array (float32 or float64), got dtype {a.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {a.shape}")
    for axis, what in int32_axes:
        if axis < a.ndim:
            check_int32_extent(a.shape[axis], name, what)


def _float_checked(a, name: str, ndim, dtype, allow_empty: bool, finite: bool, ascontiguousarray, check_finite_fn,
                   int32_axes=()):
    """The dtype / ndim / emptiness / finiteness rules of :func:`float_array`, for any array
    module (NumPy here, CuPy in :func:`float_array_cuda`): one set of rules and messages.
    ``int32_axes``: (axis, what) pairs whose extent must fit a 32-bit index (checked before any
    copy, so a huge broadcast view is refused without being materialised)."""
    _check_kind_and_shape(a, name, ndim, int32_axes)
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


def array_view(x, name: str, *, ndim=None, int32_axes=()) -> np.ndarray:
    """The NumPy view of ``x`` with float_array's dtype-kind, ndim and 32-bit extent checks, and
    no copy: for an op that must check one argument's shape before it converts another."""
    a = _as_array(x, name)
    _check_kind_and_shape(a, name, ndim, int32_axes)
    return a


def float_array(x, name: str, *, ndim=None, dtype=None, allow_empty: bool = True, finite: bool = True,
                int32_axes=()) -> np.ndarray:
    return _float_checked(_as_array(x, name), name, ndim, dtype, allow_empty, finite, np.ascontiguousarray,
                          check_finite, int32_axes)


def check_finite(a: np.ndarray, name: str) -> None:
    """ValueError naming ``name`` if the C-contiguous float array ``a`` holds a NaN or infinity
    (one compiled pass; np.isfinite(a).all() allocates a boolean array first)."""
    from .._native import cpu as _cpu

    if a.size and not _cpu.C.all_finite(a.reshape(-1)):
        raise ValueError(f"{name} contains NaN or infinity")


def vector(x, name: str, length: int, dtype) -> np.ndarray:
    return _check_length(float_array(x, name, ndim=1, dtype=dtype), name, length)


def positive_int(value, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer in {minimum}..{maximum}, got {value!r}")
    return int(value)


def flag(value, name: str) -> bool:
    """A bool (Python or NumPy); anything else (strings, None, numbers) is refused: a truthy
    string such as "no" must not silently mean True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def finite_in_dtype(value: float, name: str, dtype) -> float:
    """ValueError naming ``name`` if the finite ``value`` overflows the kernel's float type."""
    if abs(value) > float(np.finfo(dtype).max):
        raise ValueError(f"{name} must be finite in the arrays' dtype {np.dtype(dtype).name} "
                         f"(magnitude at most {float(np.finfo(dtype).max):g}), got {value!r}")
    return value


def is_finite_real(value) -> bool:
    """A real number (not a bool) that is finite as a float: np.isfinite raises TypeError on a
    Python int past 2**64 and float() OverflowError past 1e308, so neither is asked alone."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def real(value, name: str, *, low=None, high=None, low_open=False) -> float:
    if not is_finite_real(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


_RBM_AXES = ((0, "rows (n_hidden)"), (1, "columns (n_visible)"))


def rbm_parameters(W, b_vis, b_hid, dtype=None):
    """weights [n_hidden, n_visible], visible bias [n_visible], hidden bias [n_hidden]; both
    extents must fit the kernels' 32-bit indices and BLAS dimensions."""
    W = float_array(W, "W", ndim=2, dtype=dtype, int32_axes=_RBM_AXES)
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


def as_generator(generator):
    """:func:`fastgen.random.as_generator` for an op's ``generator`` argument: its refusals
    (a negative or too large int seed says "seed must be ...") re-raised naming ``generator``."""
    from ..random import as_generator as _as_generator

    try:
        return _as_generator(generator)
    except (ValueError, TypeError) as exc:
        if str(exc).startswith("generator"):
            raise
        raise type(exc)(f"generator (a fastgen.Generator or an int seed): {exc}") from exc

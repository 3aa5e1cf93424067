"""Input validation shared by the ops: run once, before a kernel sees anything.

Conventions: float32 and float64 pass through (no copy when C-contiguous); other real numeric
dtypes (bool, integers, float16) are converted once to float64 (float16 to float32);
non-contiguous arrays are copied to C order; anything else is refused with a TypeError that
names the argument. The ``*_cuda`` variants apply the same rules to CuPy arrays (the CUDA paths'
compute form, see ``fastgen._backend``); NaN/inf checks there are reductions left on the device,
read back together in one host synchronisation per op call (:class:`DeviceChecks`).
"""
from __future__ import annotations

import numpy as np

from .._backend import to_numpy
from .._checks import (INT32_MAX, as_generator, check_int32_extent, check_output_size, finite_in_dtype, flag,  # noqa: F401
                       is_finite_real, positive_int, real)

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

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


_RBM_AXES = ((0, "rows (n_hidden)"), (1, "columns (n_visible)"))


def rbm_parameters(W, b_vis, b_hid, dtype=None):
    """weights [n_hidden, n_visible], visible bias [n_visible], hidden bias [n_hidden]; both
    extents must fit the kernels' 32-bit indices and BLAS dimensions."""
    W = float_array(W, "W", ndim=2, dtype=dtype, int32_axes=_RBM_AXES)
    n_hidden, n_visible = W.shape
    return W, vector(b_vis, "b_vis", n_visible, W.dtype), vector(b_hid, "b_hid", n_hidden, W.dtype)


# ---- CUDA (CuPy arrays) ---------------------------------------------------------------------
class DeviceChecks:
    """Value checks of CuPy arrays read back in one host synchronisation per op call.

    Each check is a boolean reduction left on the device (:meth:`require`); :meth:`raise_first`
    copies every flag to the host at once and raises the first failed check's error, in the
    order the checks were made. A check per argument would wait for the device once per
    argument, stalling a caller's asynchronous pipeline (torch's, CuPy's) as many times.
    """

    def __init__(self):
        self._flags = []
        self._errors = []

    def require(self, ok, error: Exception) -> None:
        """Queue ``ok`` (a 0-d boolean device array) and the error to raise if it is false."""
        self._flags.append(ok)
        self._errors.append(error)

    def finite(self, a, name: str) -> None:
        """Queue the check that ``a`` holds no NaN or infinity (nothing for None or empty)."""
        if a is not None and a.size:
            import cupy as cp

            self.require(cp.isfinite(a).all(), ValueError(f"{name} contains NaN or infinity"))

    def raise_first(self) -> None:
        """Read every queued flag (one synchronisation) and raise the first failed check's error."""
        if not self._flags:
            return
        import cupy as cp

        ok = cp.stack(self._flags).tolist()
        errors = self._errors
        self._flags, self._errors = [], []
        for passed, error in zip(ok, errors):
            if not passed:
                raise error


def float_array_cuda(a, name: str, *, ndim=None, dtype=None, allow_empty: bool = True, finite: bool = True,
                     checks: DeviceChecks | None = None):
    """:func:`float_array` for a CuPy array ``a`` (same dtype rules, same messages). The finiteness
    check is queued on ``checks`` when given (the caller reads all its checks at once), else made
    now (one synchronisation)."""
    import cupy as cp

    queue = checks if checks is not None else DeviceChecks()
    a = _float_checked(a, name, ndim, dtype, allow_empty, finite, cp.ascontiguousarray, queue.finite)
    if checks is None:
        queue.raise_first()
    return a


def vector_cuda(a, name: str, length: int, dtype, checks: DeviceChecks | None = None):
    return _check_length(float_array_cuda(a, name, ndim=1, dtype=dtype, checks=checks), name, length)


def rbm_parameters_cuda(pl, W, b_vis, b_hid, dtype=None, checks: DeviceChecks | None = None):
    """:func:`rbm_parameters` on the device of placement ``pl`` (finiteness queued on ``checks``
    when given)."""
    queue = checks if checks is not None else DeviceChecks()
    W = float_array_cuda(pl.array(W, "W"), "W", ndim=2, dtype=dtype, checks=queue)
    n_hidden, n_visible = W.shape
    params = (W, vector_cuda(pl.array(b_vis, "b_vis"), "b_vis", n_visible, W.dtype, checks=queue),
              vector_cuda(pl.array(b_hid, "b_hid"), "b_hid", n_hidden, W.dtype, checks=queue))
    if checks is None:
        queue.raise_first()
    return params

"""One pass over a data matrix: whether it is finite, its range, and its float64 column sums.

The estimators' input check: scikit-learn's ``check_array`` would make four passes (isfinite,
min, max, the column sums the AIS base rates need); csrc/data_summary.cpp makes one, with the
column sums in a fixed order, so they do not depend on the thread count. CUDA input (CuPy, torch
CUDA tensors, DLPack / ``__cuda_array_interface__`` producers) is summarised on its device with
CuPy reductions on the caller's current stream and one synchronisation for the three scalars.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._native import cpu as _cpu
from .._backend import placement
from .validation import flag, float_array, float_array_cuda

__all__ = ["DataSummary", "data_summary"]


class DataSummary(NamedTuple):
    """What :func:`data_summary` finds in x of shape (n_rows, n_columns)."""

    finite: bool               # no NaN and no infinity anywhere
    min: float                 # smallest value (inf for an empty x; meaningless unless finite)
    max: float                 # largest value (-inf for an empty x; meaningless unless finite)
    column_sums: np.ndarray | None  # [n_columns] float64 sums (NumPy), None unless asked for


def data_summary(x, *, column_sums: bool = False) -> DataSummary:
    """Finiteness, minimum, maximum and (optionally) float64 column sums of x in one pass.

    Parameters
    ----------
    x : array of shape (n_rows, n_columns)
        float32 and float64 are read as given; other real dtypes are converted once (see
        ``fastgen.ops``). NaN and infinity are allowed: finding them is the point. Read only.
    column_sums : bool, default=False
        Also sum every column in float64.

    Returns
    -------
    DataSummary
        Python scalars, and the column sums as a NumPy float64 array of shape (n_columns,)
        whatever device x lives on.
    """
    want_sums = flag(column_sums, "column_sums")
    pl = placement(x=x)
    if pl.cuda:
        with pl.activate():
            return _data_summary_cupy(float_array_cuda(pl.array(x, "x"), "x", ndim=2, finite=False), want_sums)
    a = float_array(x, "x", ndim=2, finite=False)
    sums = np.zeros(a.shape[1]) if want_sums else None
    finite, low, high = _cpu.C.summarize_rows(a, sums)
    return DataSummary(bool(finite), float(low), float(high), sums)


def _data_summary_cupy(a, want_sums: bool) -> DataSummary:
    """:func:`data_summary` of a validated C-contiguous float CuPy matrix ``a``: a NaN anywhere
    makes the minimum NaN, an infinity makes an extreme infinite, so the two extremes decide."""
    import cupy as cp

    sums = a.sum(axis=0, dtype=np.float64).get() if want_sums else None
    if a.size == 0:
        return DataSummary(True, float("inf"), float("-inf"), sums)
    low, high = (float(v) for v in cp.stack([a.min(), a.max()]).get())
    return DataSummary(bool(np.isfinite(low) and np.isfinite(high)), low, high, sums)

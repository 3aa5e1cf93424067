"""Products with a binary (0/1) operand: each output row is a sum of selected rows of the dense
operand, with no multiplications and (density x) the additions of a dense GEMM.

The RBM loops use the compiled kernel internally on index lists the sampler writes; this op
exposes it for arrays a user holds (for example binarized data times weights).
"""
from __future__ import annotations

import numpy as np

from .._native import cpu as _cpu
from .._backend import wrap_like
from .validation import array_view, flag, float_array


def binary_matmul(a, b, *, transpose_a: bool = False):
    """``a @ b`` (or ``a.T @ b``) for a matrix ``a`` whose entries are all 0 or 1.

    Parameters
    ----------
    a : array of shape (m, k), or (k, m) with ``transpose_a``
        The binary operand; any real dtype whose values are exactly 0 or 1 (bool works).
    b : array of shape (k, n)
        The dense operand, float32 or float64 (other real dtypes are converted to float64).
    transpose_a : bool
        Compute ``a.T @ b``: the gradient-statistics form (for example ``v.T @ p_h``).

    Returns
    -------
    out : array of shape (m, n), dtype of ``b``, the caller's array kind.

    Raises
    ------
    ValueError
        If ``a`` holds a value other than 0 or 1, or the inner dimensions differ.
    """
    transpose_a = flag(transpose_a, "transpose_a")
    # a's ones become int32 column lists (and, for a.T @ b, int32 row lists)
    a_view = array_view(a, "a", ndim=2, int32_axes=((0, "rows"), (1, "columns")))
    b_arr = float_array(b, "b", ndim=2)
    a_arr = float_array(a_view, "a", ndim=2, dtype=b_arr.dtype)
    k = a_arr.shape[0] if transpose_a else a_arr.shape[1]
    if k != b_arr.shape[0]:
        want = "a.shape[0]" if transpose_a else "a.shape[1]"
        raise ValueError(f"{want} ({k}) must equal b.shape[0] ({b_arr.shape[0]}) for "
                         f"{'a.T @ b' if transpose_a else 'a @ b'}; got a {a_arr.shape}, b {b_arr.shape}")
    C = _cpu.C
    indices, counts, nnz = C.binary_rows(a_arr)
    if nnz < 0:
        raise ValueError("a must be binary: every entry 0 or 1 (use a dense product for other values)")
    if transpose_a:
        out = np.empty((a_arr.shape[1], b_arr.shape[1]), b_arr.dtype)
        C.binary_transposed_matmul(indices, counts, a_arr.shape[1], b_arr, out)
    else:
        out = np.empty((a_arr.shape[0], b_arr.shape[1]), b_arr.dtype)
        C.binary_matmul(indices, counts, b_arr, None, out)
    return wrap_like(out, b)

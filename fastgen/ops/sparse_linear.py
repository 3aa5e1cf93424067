"""A linear layer for inputs with many exact zeros: ``y = x @ weight_t + bias``.

``weight_t`` is stored (in_features, out_features), the transpose of ``nn.Linear.weight``, so
that each nonzero ``x[r, k]`` selects the contiguous row ``weight_t[k]``. The compiled kernel
(csrc/sparse_linear.cpp) lists each row's nonzeros and sums only the rows of ``weight_t`` they
select, the output row held in SIMD registers; the weight gradient ``x.T @ grad_y`` runs the same
way on the column lists of x. Above a density of nonzeros measured on the development CPU the
dense GEMM wins, and the product goes to BLAS instead (:data:`FORWARD_MAX_DENSITY`,
:data:`BACKWARD_MAX_DENSITY`), so dense input is never sent down the slow path.

Where the kernel runs, each output element is summed by one thread in a fixed order (x's columns,
respectively rows, ascending): the results do not depend on the thread count. Above the
crossover they are the BLAS's. Multiplications by exact zeros are skipped, which is why NaN or
infinity is refused in every argument (a dense product would spread them).

:func:`sparse_input_linear` is the NumPy entry; ``fastgen.torch.sparse_input_linear`` (the torch
custom op ``torch.ops.fastgen.sparse_input_linear``) adds autograd, and
``fastgen.torch.nn.SparseInputLinear`` is the nn.Module.
"""
from __future__ import annotations

import numpy as np

from .. import _buffers
from .._native import cpu as _cpu
from .._backend import wrap_like
from .._checks import check_int32_extent
from .validation import float_array

# Densities of nonzeros in x (nonzeros / x.size) up to which the kernel runs; above them the
# dense GEMM does (the crossovers ``python -m bench.sparse_linear`` measures, docs/performance.md).
# The weight gradient does more per entry (it also transposes the lists), hence its lower crossover.
FORWARD_MAX_DENSITY = 0.4
BACKWARD_MAX_DENSITY = 0.25

_STATUS_DONE, _STATUS_TOO_DENSE, _STATUS_NOT_FINITE = 0, 1, 2


def check_shapes(x_shape, weight_t_shape, bias_shape) -> None:
    """ValueError naming the argument unless x is (batch, in), weight_t (in, out), bias (out,)."""
    if len(x_shape) != 2:
        raise ValueError(f"x must be 2-D (batch, in_features), got shape {tuple(x_shape)}")
    if len(weight_t_shape) != 2:
        raise ValueError(f"weight_t must be 2-D (in_features, out_features), got shape {tuple(weight_t_shape)}")
    # the kernel lists x's nonzeros as int32 column numbers (and, for the weight gradient, int32
    # row numbers): both extents must fit
    check_int32_extent(x_shape[1], "x", "columns (in_features)")
    check_int32_extent(x_shape[0], "x", "rows (batch)")
    if weight_t_shape[0] != x_shape[1]:
        raise ValueError(f"weight_t must have x.shape[1] = {x_shape[1]} rows (in_features, out_features), got "
                         f"shape {tuple(weight_t_shape)}")
    if bias_shape is not None and tuple(bias_shape) != (weight_t_shape[1],):
        raise ValueError(f"bias must have shape ({weight_t_shape[1]},) (out_features), got {tuple(bias_shape)}")


def forward_numpy(x: np.ndarray, weight_t: np.ndarray, bias, max_density: float | None = None):
    """The kernel on validated C-contiguous arrays of one dtype: y, or None when x is denser
    than ``max_density`` (default :data:`FORWARD_MAX_DENSITY`; the caller runs its dense GEMM).
    ValueError if x holds NaN or infinity (found by the pass that counts its nonzeros)."""
    y = _buffers.empty((x.shape[0], weight_t.shape[1]), x.dtype)
    limit = FORWARD_MAX_DENSITY if max_density is None else max_density
    status = _cpu.C.sparse_linear_forward(x, weight_t, bias, y, limit)
    if status == _STATUS_NOT_FINITE:
        raise ValueError("x contains NaN or infinity")
    return y if status == _STATUS_DONE else None


def backward_numpy(x: np.ndarray, grad_y: np.ndarray, need_weight: bool, need_bias: bool,
                   max_density: float | None = None):
    """(grad_weight_t or None, grad_bias or None) on validated C-contiguous arrays; grad_weight_t
    is also None when x is denser than ``max_density`` (default :data:`BACKWARD_MAX_DENSITY`;
    the caller's dense GEMM computes it)."""
    limit = BACKWARD_MAX_DENSITY if max_density is None else max_density
    grad_b = np.empty(grad_y.shape[1], grad_y.dtype) if need_bias else None
    grad_w = _buffers.empty((x.shape[1], grad_y.shape[1]), x.dtype) if need_weight else None
    if grad_w is None and grad_b is None:
        return None, None
    status = _cpu.C.sparse_linear_backward(x, grad_y, grad_w, grad_b, limit)
    if status == _STATUS_NOT_FINITE:
        raise ValueError("x contains NaN or infinity")
    return (grad_w if status == _STATUS_DONE else None), grad_b


def sparse_input_linear(x, weight_t, bias=None):
    """``x @ weight_t + bias`` computed on x's nonzeros (see the module docstring).

    Parameters
    ----------
    x : array (batch, in_features)
        float32 or float64 (other real dtypes become float64), finite; typically mostly zeros.
    weight_t : array (in_features, out_features)
        Converted to x's dtype; finite.
    bias : array (out_features,), optional

    Returns
    -------
    y : array (batch, out_features), x's dtype, the caller's array kind. Inputs are not modified.
    """
    x_arr = float_array(x, "x", ndim=2, finite=False,  # the kernel's count pass checks x
                        int32_axes=((0, "rows (batch)"), (1, "columns (in_features)")))
    w_arr = float_array(weight_t, "weight_t", ndim=2, dtype=x_arr.dtype)
    b_arr = None if bias is None else float_array(bias, "bias", ndim=1, dtype=x_arr.dtype)
    check_shapes(x_arr.shape, w_arr.shape, None if b_arr is None else b_arr.shape)
    y = forward_numpy(x_arr, w_arr, b_arr)
    if y is None:
        y = x_arr @ w_arr
        if b_arr is not None:
            y += b_arr
    return wrap_like(y, x)


__all__ = ["sparse_input_linear", "FORWARD_MAX_DENSITY", "BACKWARD_MAX_DENSITY", "check_shapes",
           "forward_numpy", "backward_numpy"]

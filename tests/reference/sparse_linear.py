"""Reference for fastgen.ops.sparse_input_linear: the dense float64 affine map and its gradients."""
from __future__ import annotations

import numpy as np


def sparse_input_linear(x, weight_t, bias=None):
    """y = x @ weight_t + bias in float64, with the same signature as the op."""
    y = np.asarray(x, np.float64) @ np.asarray(weight_t, np.float64)
    return y if bias is None else y + np.asarray(bias, np.float64)


def sparse_input_linear_grads(x, weight_t, grad_y):
    """(grad_x, grad_weight_t, grad_bias) of sum(grad_y * y), float64."""
    x, weight_t, g = (np.asarray(a, np.float64) for a in (x, weight_t, grad_y))
    return g @ weight_t.T, x.T @ g, g.sum(0)

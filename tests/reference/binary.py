"""Reference for fastgen.ops.binary_matmul: the dense float64 product."""
from __future__ import annotations

import numpy as np


def binary_matmul(a, b, transpose_a=False):
    """a @ b (a.T @ b with ``transpose_a``) in float64."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a64.T if transpose_a else a64) @ b64

"""Reference activations in float64: the numerically stable forms of
kernels/include/fastgen/math.h, written with NumPy."""
from __future__ import annotations

import numpy as np


def sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(x):
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64))


def log_sigmoid(x):
    return -softplus(-np.asarray(x, dtype=np.float64))

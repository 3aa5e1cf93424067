"""References for fastgen.ops.sampling (sample_bernoulli, sample_gaussian) on the Philox
uniforms and normals of :mod:`reference.philox`.

Bernoulli: state = 1 iff u < p. Draws that fall within ``tol`` of their threshold (|p - u| < tol)
may legitimately differ between a float32/float64 kernel and this float64 reference; the
references report them so that a test compares everything else exactly.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import sigmoid
from .philox import normal, seed_and_offset, uniform

# Width of the band |p - u| < tol inside which a kernel's draw may differ from the reference:
# float32 probabilities carry a few 1e-7 of rounding (more after a float32 GEMM), float64 ~1e-15.
AMBIGUOUS_TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-9}


def ambiguous_tol(dtype) -> float:
    return AMBIGUOUS_TOL[np.dtype(dtype)]


def bernoulli(p, u) -> np.ndarray:
    """Bernoulli states from probabilities and uniforms: 1 iff u < p (float64 0/1)."""
    return (np.asarray(u, np.float64) < np.asarray(p, np.float64)).astype(np.float64)


class BernoulliDraw(NamedTuple):
    probs: np.ndarray      # float64
    states: np.ndarray     # float64 0/1
    margin: np.ndarray     # |p - u|: states with margin < tol may differ from a kernel's


def sample_bernoulli(x, bias=None, *, from_logits=True, generator=0, dtype=None) -> BernoulliDraw:
    """Reference for fastgen.ops.sample_bernoulli (takes one offset, like the op's states)."""
    x64 = np.asarray(x, dtype=np.float64)
    dtype = np.dtype(dtype or (x.dtype if np.asarray(x).dtype in (np.float32, np.float64) else np.float64))
    if from_logits:
        # the kernel adds the bias in its own dtype, then takes the sigmoid
        pre = np.asarray(x, dtype) + (np.asarray(bias, dtype) if bias is not None else dtype.type(0))
        p = sigmoid(pre)
    else:
        p = np.asarray(x, dtype).astype(np.float64)
    seed, offset = seed_and_offset(generator)
    u = uniform(seed, offset, x64.shape, dtype).astype(np.float64)
    return BernoulliDraw(p, bernoulli(p, u), np.abs(p - u))


def sample_gaussian(mean, std=1.0, *, bias=None, generator=0, dtype=None):
    """Reference for fastgen.ops.sample_gaussian: (values, error_scale) in float64."""
    mean = np.asarray(mean)
    dtype = np.dtype(dtype or (mean.dtype if mean.dtype in (np.float32, np.float64) else np.float64))
    m = mean.astype(np.float64) + (np.asarray(bias, np.float64) if bias is not None else 0.0)
    s = np.asarray(std, np.float64)
    seed, offset = seed_and_offset(generator)
    z = normal(seed, offset, mean.shape, dtype)
    scale = np.abs(mean.astype(np.float64)) + (np.abs(np.asarray(bias, np.float64)) if bias is not None else 0.0)
    return m + s * z.values, scale + s * np.maximum(z.radius, 1e-3)
